#!/usr/bin/env bash
# Installs what the test suite needs: npm packages (npm ci) and Debian packages the
# integration tests call (lspci from pciutils; xenstore-read/-write/-ls from
# xenstore-utils). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v lspci >/dev/null 2>&1 || need+=(pciutils)
command -v xenstore-ls >/dev/null 2>&1 || need+=(xenstore-utils)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}"
fi
npm ci --no-audit --no-fund

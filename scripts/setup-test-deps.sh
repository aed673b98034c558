#!/usr/bin/env bash
# Installs what the test suite needs: npm packages (npm ci), the Debian packages the
# integration tests call (lspci from pciutils; xenstore-read/-write/-ls from
# xenstore-utils; python3-pyxs; libxen-dev and a C compiler for the real-xenstored shim),
# and Xen's real C/OCaml xenstored, extracted once into .cache/xen-utils by
# $PCIBACK_SHARED_DIR/oracles/xenstored/get-xen-utils.sh (default ../shared).
# Safe to run again; quick when everything is there. Uses sudo only when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    "${sudo_cmd[@]}" apt-get update -qq
    apt_updated=1
  fi
}

need=()
for pkg in pciutils xenstore-utils python3-pyxs libxen-dev gcc libc6-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt_update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${need[@]}"
fi

# Xen's real daemons (test/support/real-xenstored.ts reads the same directory).
shared_dir=${PCIBACK_SHARED_DIR:-$(pwd)/../shared}
get_xen_utils=$shared_dir/oracles/xenstored/get-xen-utils.sh
xen_utils=$(pwd)/.cache/xen-utils
if [ ! -f "$get_xen_utils" ]; then
  echo "setup-test-deps: $get_xen_utils not found: the real-xenstored tests will be skipped" >&2
elif [ ! -x "$xen_utils/root/usr/lib/xen-4.17/bin/xenstored" ] \
  || [ ! -f "$xen_utils/fakexen.so" ] \
  || [ "$shared_dir/oracles/xenstored/fakexen.c" -nt "$xen_utils/fakexen.so" ]; then
  # get-xen-utils.sh uses `apt-get download`, which needs package lists.
  if ! apt-cache show xen-utils-4.17 >/dev/null 2>&1; then apt_update; fi
  mkdir -p "$xen_utils"
  bash "$get_xen_utils" "$xen_utils" >/dev/null
  rm -f "$xen_utils"/*.deb
fi

# npm ci wipes node_modules: only when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

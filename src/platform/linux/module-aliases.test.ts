// SPDX-License-Identifier: MIT
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PciAddress } from '../../pci/address.js';
import { FakeSysfs } from './fake-sysfs.js';
import { LinuxPciHost } from './linux-pci-host.js';
import { ModuleAliases, parseModuleAliases, pciModalias } from './module-aliases.js';
import * as M from './test-machine.js';

// Lines as depmod writes them (Debian 12's 6.1 kernel), plus noise it never writes.
const ALIASES = `# Aliases extracted from modules themselves.
alias pci:v00008086d000010C9sv*sd*bc*sc*i* igb
alias pci:v000010DEd*sv*sd*bc03sc*i* nouveau
alias pci:v*d*sv*sd*bc0Csc03i30* xhci-pci
alias pci:v*d*sv*sd*bc01sc08i02* nvme
alias pci:v*d*sv*sd*bc06sc04i00* shpchp
alias usb:v*p*d*dc*dsc*dp*ic09isc*ip*in* usbcore
alias pci:v*d*sv*sd*bc*sc*i* pci-stub
alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci
alias pci:v00008086d00003E0Fsv*sd*bc*sc*i* two words here
garbage
`;

test('parseModuleAliases keeps the pci: aliases, with module names as the kernel spells them', () => {
  assert.deepEqual(
    parseModuleAliases(ALIASES).map((a) => a.module),
    ['igb', 'nouveau', 'xhci_pci', 'nvme', 'shpchp', 'pci_stub'],
  );
});

test("pciModalias is pci_uevent's MODALIAS", () => {
  assert.equal(
    pciModalias({
      vendorId: 0x8086,
      deviceId: 0x10c9,
      subsystemVendorId: 0x8086,
      subsystemDeviceId: 0xa03c,
      classCode: 0x020000,
    }),
    'pci:v00008086d000010C9sv00008086sd0000A03Cbc02sc00i00',
  );
});

test('modulesFor matches like fnmatch: *, ? and [...] and nothing else', () => {
  const aliases = new ModuleAliases([
    ...parseModuleAliases(ALIASES),
    { pattern: 'pci:v0000100[0-2]d*sv*sd*bc*sc*i*', module: 'ranged' },
    { pattern: 'pci:v0000200?d*sv*sd*bc*sc*i*', module: 'one' },
    { pattern: 'pci:v(x)d.*sv*sd*bc*sc*i*', module: 'literal' },
  ]);
  const igb = 'pci:v00008086d000010C9sv00008086sd0000A03Cbc02sc00i00';
  assert.deepEqual(aliases.modulesFor(igb), ['igb', 'pci_stub']);
  assert.deepEqual(aliases.modulesFor('pci:v00001001d00000001sv0sd0bc02sc00i00'), [
    'pci_stub',
    'ranged',
  ]);
  assert.deepEqual(aliases.modulesFor('pci:v00001003d00000001sv0sd0bc02sc00i00'), ['pci_stub']);
  assert.deepEqual(aliases.modulesFor('pci:v00002009d1sv0sd0bc00sc00i00'), ['pci_stub', 'one']);
  assert.deepEqual(aliases.modulesFor('pci:v(x)dAAsv0sd0bc00sc00i00'), ['pci_stub']);
  assert.deepEqual(aliases.modulesFor('pci:v(x)d.sv0sd0bc00sc00i00'), ['pci_stub', 'literal']);
});

test('ModuleAliases.load reads modules.alias and modules.builtin.alias, undefined without either', () => {
  const dir = mkdtempSync(join(tmpdir(), 'modules-'));
  try {
    assert.equal(ModuleAliases.load(dir), undefined);
    writeFileSync(
      join(dir, 'modules.builtin.alias'),
      'alias pci:v*d*sv*sd*bc06sc04i00* pcieport\n',
    );
    assert.equal(ModuleAliases.load(dir)?.size, 1);
    writeFileSync(join(dir, 'modules.alias'), ALIASES);
    assert.equal(ModuleAliases.load(dir)?.size, 7);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("LinuxPciHost.nativeDriver: the matching module's PCI driver, stubs left out", () => {
  const sysfs = FakeSysfs.create({ functions: M.machine(), drivers: ['pciback', 'pci-stub'] });
  try {
    const aliases = new ModuleAliases(parseModuleAliases(ALIASES));
    const host = new LinuxPciHost({ io: sysfs, moduleAliases: aliases });
    // igb is not loaded in the fake: its module name stands for the driver.
    assert.equal(host.nativeDriver(PciAddress.parse(M.NIC)), 'igb');
    assert.equal(host.nativeDriver(PciAddress.parse(M.GPU)), 'nouveau');
    // Loaded, the module names its drivers (xhci_pci registers "xhci_hcd").
    mkdirSync(join(sysfs.root, 'module/nouveau/drivers/pci:nouveau-kms'), { recursive: true });
    assert.equal(host.nativeDriver(PciAddress.parse(M.GPU)), 'nouveau-kms');
    // The host bridge matches only pci-stub: no native driver.
    assert.equal(host.nativeDriver(PciAddress.parse('0000:00:00.0')), null);
    // Two drivers match the root port: the kernel's pick depends on load order.
    const twice = new ModuleAliases([
      ...parseModuleAliases(ALIASES),
      { pattern: 'pci:v*d*sv*sd*bc06sc04i*', module: 'pcieport' },
    ]);
    assert.equal(
      new LinuxPciHost({ io: sysfs, moduleAliases: twice }).nativeDriver(PciAddress.parse(M.PORT)),
      undefined,
    );
    // Without tables, or for an absent function: unknown.
    assert.equal(new LinuxPciHost({ io: sysfs }).nativeDriver(PciAddress.parse(M.NIC)), undefined);
    assert.equal(host.nativeDriver(PciAddress.parse('0000:09:00.0')), undefined);
  } finally {
    sysfs.dispose();
  }
});

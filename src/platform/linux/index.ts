// SPDX-License-Identifier: MIT
/**
 * The Linux platform: real PCI functions through sysfs (`LinuxPciHost`,
 * `LinuxHostPciDevice`), the stub driver choice, and a fake sysfs tree that reacts like
 * the kernel for tests (`FakeSysfs`).
 */
export { describeErrno, errnoNumber, LINUX_ERRNO, type LinuxErrnoName } from './errno.js';
export {
  FakeSysfs,
  fakeFunctionFromDump,
  fakeFunctionsFromDumpFile,
  type FakeConsumers,
  type FakePciFunctionSpec,
  type FakeSysfsFault,
  type FakeSysfsOptions,
  type FakeSysfsWrite,
} from './fake-sysfs.js';
export { type SimpleConfigSpec } from './fake-config.js';
export {
  FAKE_STUB_DRIVERS,
  type FakeDriverSpec,
  type FakePciId,
  type FakeProbeView,
} from './fake-drivers.js';
export { LinuxHostPciDevice, type LinuxHostPciDeviceOptions } from './host-device.js';
export {
  LinuxPciHost,
  type LinuxPciFunctionInfo,
  type LinuxPciHostOptions,
} from './linux-pci-host.js';
export {
  MODULE_ALIAS_FILES,
  ModuleAliases,
  defaultModulesDir,
  parseModuleAliases,
  pciModalias,
  type ModuleAlias,
} from './module-aliases.js';
export {
  LinuxStubDevice,
  type ConfigBitsInjector,
  type LinuxStubDeviceOptions,
} from './stub-device.js';
export {
  STUB_DRIVERS,
  STUB_DRIVER_MODULES,
  chooseStubDriver,
  iommuGroupPeers,
  iommuGroupWarning,
  isStubDriverName,
  type IommuGroupPeer,
  type StubDriverName,
} from './stub-driver.js';
export { isPciSlotName } from './sysfs-format.js';
export {
  NodeSysfsIo,
  ReadOnlySysfsIo,
  SysfsError,
  SysfsIoWriteDecorator,
  isSysfsError,
  type NodeSysfsIoOptions,
  type SysfsErrorOptions,
  type SysfsIo,
  type SysfsOperation,
} from './sysfs-io.js';

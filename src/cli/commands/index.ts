// SPDX-License-Identifier: MIT
/** Every CLI command, one module each; each adds itself to the program. */
import type { Command } from 'commander';
import { registerAbiCommand } from './abi.js';
import { registerHideCheckCommand } from './hide-check.js';
import { registerConfspaceCommand } from './confspace.js';
import { registerGuestViewCommand } from './guest-view.js';
import { registerDemoCommand } from './demo.js';
import { registerSimCommand } from './sim.js';
import { registerPciSpecCommand } from './pci-spec.js';
import { registerXenstoredCommand } from './xenstored.js';
import { registerXlPciCommands } from './xl-pci.js';
import { registerDaemonCommand } from './daemon.js';
import { registerAssignableCommands } from './assignable.js';
import { registerAerInjectCommand } from './aer-inject.js';
import { registerStubAttrCommand } from './stub-attr.js';

/** Adds one command (with its options and action) to the program. */
export type RegisterCommand = (program: Command) => void;

export const commands: readonly RegisterCommand[] = [
  registerSimCommand,
  registerDemoCommand,
  registerConfspaceCommand,
  registerGuestViewCommand,
  registerAbiCommand,
  registerHideCheckCommand,
  registerPciSpecCommand,
  registerXenstoredCommand,
  registerXlPciCommands,
  registerDaemonCommand,
  registerAssignableCommands,
  registerAerInjectCommand,
  registerStubAttrCommand,
];

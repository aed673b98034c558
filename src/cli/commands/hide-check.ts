// SPDX-License-Identifier: MIT
/**
 * `pciback hide-check VALUE [--json] [--expand]`: parse a `hide=` value (spec §6.1) the
 * way pciback does, list what it selects, or explain where it is wrong.
 */
import {
  HideSyntaxError,
  expandHideSelectors,
  formatHideSelector,
  parseHide,
  type HideSelector,
} from '../../pciback/stub/hide.js';
import { UserError, printJson, printLines } from '../output.js';
import type { RegisterCommand } from './index.js';

/** Parse `value`, turning a syntax error into the CLI's one-line-plus-suggestion error. */
export function checkHide(value: string): readonly HideSelector[] {
  try {
    return parseHide(value);
  } catch (err) {
    if (!(err instanceof HideSyntaxError)) throw err;
    let message = `Invalid hide= value at position ${err.position}: ${err.reason}`;
    if (err.suggestion !== undefined) message += `\n${err.suggestion}`;
    throw new UserError(message, { cause: err });
  }
}

/** Registers `pciback hide-check`. */
export const registerHideCheckCommand: RegisterCommand = (program) => {
  program
    .command('hide-check')
    .description(
      'Check a xen-pciback.hide= value: list the devices it selects, or explain the error',
    )
    .argument('<value>', 'the value, e.g. "(0000:03:00.0)(04:00.*)"')
    .option('--json', 'print a JSON array of {domain, bus, slot, func} ("*" for wildcards)')
    .option('--expand', 'list every function selected, wildcards expanded')
    .action((value: string, options: { json?: boolean; expand?: boolean }) => {
      const selectors = checkHide(value);
      if (options.expand === true) {
        const addresses = expandHideSelectors(selectors).map(String);
        if (options.json === true) printJson(addresses);
        else printLines(addresses);
        return;
      }
      if (options.json === true) {
        printJson(selectors.map(({ domain, bus, slot, func }) => ({ domain, bus, slot, func })));
      } else {
        printLines(selectors.map(formatHideSelector));
      }
    });
};

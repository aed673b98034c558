// SPDX-License-Identifier: MIT
/**
 * The daemon's control protocol: newline-delimited JSON over a Unix socket, one request
 * per line and one response per line, in order.
 *
 * ```
 * -> {"id":1,"method":"assignable.add","params":{"bdf":"03:00.0","name":"nic"}}
 * <- {"id":1,"result":{"address":"0000:03:00.0","name":"nic",...}}
 * -> {"id":2,"method":"assignable.remove","params":{"ref":"nope"}}
 * <- {"id":2,"error":{"code":"ASSIGNABLE_UNKNOWN_DEVICE","message":"Cannot remove ..."}}
 * ```
 *
 * A line that is not JSON, or longer than the bound, gets one error response (id null)
 * and the connection is closed: the stream cannot be trusted after it. A JSON request
 * of the wrong shape, an unknown method or bad parameters get an error response and
 * the connection stays open.
 */
import { z } from 'zod';
import type {
  AddAssignableResult,
  AssignableRow,
  RemoveAssignableResult,
} from '../assignable-service.js';

/** Longest request line the daemon reads (bytes, without the newline). */
export const CONTROL_MAX_REQUEST_BYTES = 64 * 1024;
/** Longest response line the client reads (a long list of devices). */
export const CONTROL_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Error codes of the protocol itself (handlers add the `PcibackError` codes they throw). */
export const CONTROL_ERROR = {
  /** The line is not JSON. The connection is closed. */
  parse: 'CONTROL_PARSE_ERROR',
  /** The line is longer than {@link CONTROL_MAX_REQUEST_BYTES}. The connection is closed. */
  lineTooLong: 'CONTROL_LINE_TOO_LONG',
  /** JSON, but not `{ id, method, params? }`. */
  invalidRequest: 'CONTROL_INVALID_REQUEST',
  /** No such method. */
  unknownMethod: 'CONTROL_UNKNOWN_METHOD',
  /** The method's parameters are wrong. */
  invalidParams: 'CONTROL_INVALID_PARAMS',
  /** Too many clients at once. The connection is closed. */
  tooManyClients: 'CONTROL_TOO_MANY_CLIENTS',
  /** The daemon failed in a way it did not expect (a bug); the message says how. */
  internal: 'CONTROL_INTERNAL_ERROR',
  /** Client side: no response within the timeout. */
  timeout: 'CONTROL_TIMEOUT',
  /** Client side: the daemon closed the connection (or could not be reached). */
  closed: 'CONTROL_CLOSED',
  /** Client side: the daemon answered with something that is not a response. */
  badResponse: 'CONTROL_BAD_RESPONSE',
} as const;

/** A request id: what the client chose, echoed in the response. */
export type ControlRequestId = string | number;

/** The envelope of a request. */
export const controlRequestSchema = z.strictObject({
  id: z.union([z.string().max(128), z.number().int()]),
  method: z.string().min(1).max(128),
  params: z.unknown().optional(),
});

/** A validated request envelope. */
export type ControlRequest = z.infer<typeof controlRequestSchema>;

const bdfText = z.string().min(1).max(64);

/** The stub driver's attributes the daemon serves (spec §6.5). */
export const STUB_ATTRIBUTES = [
  'slots',
  'new_slot',
  'remove_slot',
  'permissive',
  'allow_interrupt_control',
  'quirks',
  'irq_handlers',
  'irq_handler_state',
  'bind',
  'unbind',
] as const;

/** One of {@link STUB_ATTRIBUTES}. */
export type StubAttribute = (typeof STUB_ATTRIBUTES)[number];

/** The parameters of each method. */
export const CONTROL_PARAMS = {
  'assignable.add': z.strictObject({
    bdf: bdfText,
    name: z.string().max(256).nullable().optional(),
    force: z.boolean().optional(),
  }),
  'assignable.remove': z.strictObject({
    /** A name or a BDF. */
    ref: z.string().min(1).max(256),
    rebind: z.boolean().optional(),
  }),
  'assignable.list': z.strictObject({ verbose: z.boolean().optional() }),
  /**
   * One attribute of the stub driver's directory (`/sys/bus/pci/drivers/pciback/<name>`,
   * spec §6.5): read without `value`, written with it.
   */
  'stub.attribute': z.strictObject({
    name: z.enum(STUB_ATTRIBUTES),
    value: z.string().max(256).optional(),
  }),
  /** Simulator only: inject an uncorrectable PCIe error and run AER recovery. */
  'aer.inject': z.strictObject({ bdf: bdfText, fatal: z.boolean().optional() }),
  status: z.strictObject({}),
} as const;

/** A method name. */
export type ControlMethod = keyof typeof CONTROL_PARAMS;

/** The methods, in the order `status` lists them. */
export const CONTROL_METHODS = Object.keys(CONTROL_PARAMS) as ControlMethod[];

/** True when `name` is a method of the protocol. */
export function isControlMethod(name: string): name is ControlMethod {
  return Object.hasOwn(CONTROL_PARAMS, name);
}

/** The parameters of `M` as a caller writes them. */
export type ControlParams<M extends ControlMethod> = z.input<(typeof CONTROL_PARAMS)[M]>;

/** One reconcile repair, as `status` reports it. */
export interface ControlRepair {
  readonly kind: string;
  readonly device: string;
  readonly domid?: number;
  readonly message: string;
}

/** What `status` answers. */
export interface DaemonStatus {
  readonly pid: number;
  /** `sim` or `linux`. */
  readonly platform: string;
  readonly stubDriver: string;
  readonly stateDir: string;
  readonly databasePath: string;
  readonly controlPath: string;
  /** The sysfs root of the linux platform (a fake tree's directory with `--fake-sysfs`); null otherwise. */
  readonly sysfsRoot: string | null;
  /** The fake host's description file, or null for a real host. */
  readonly fakeSysfs: string | null;
  readonly startedAtMs: number;
  readonly uptimeMs: number;
  /** What reconcile repaired at start. */
  readonly repairs: readonly ControlRepair[];
  /** Devices on the stub and not attached. */
  readonly assignable: number;
  readonly methods: readonly ControlMethod[];
}

/** The result of each method. */
export interface ControlResults {
  'assignable.add': AddAssignableResult;
  'assignable.remove': RemoveAssignableResult;
  'assignable.list': AssignableRow[];
  'stub.attribute': { readonly text: string };
  'aer.inject': AerInjectResult;
  status: DaemonStatus;
}

/** What `aer.inject` answers: the recovery as dom0's AER core ran it. */
export interface AerInjectResult {
  readonly address: string;
  readonly fatal: boolean;
  /** False when every injected error bit was masked (nothing to recover). */
  readonly detected: boolean;
  /** The merged vote, e.g. `RECOVERED`. */
  readonly status: string;
  readonly recovered: boolean;
  /** Every driver callback, in order: `0000:01:00.0 error_detected -> CAN_RECOVER`. */
  readonly calls: readonly string[];
  /** Guests pciback asked the toolstack to destroy (`aerState` = `aerfail`). */
  readonly killedDomains: readonly number[];
}

/** An error as it travels. */
export interface ControlErrorBody {
  readonly code: string;
  readonly message: string;
}

/** A response line. */
export type ControlResponse =
  | { readonly id: ControlRequestId | null; readonly result: unknown }
  | { readonly id: ControlRequestId | null; readonly error: ControlErrorBody };

/** The envelope of a response, as the client checks it. */
export const controlResponseSchema = z.union([
  z.strictObject({
    id: z.union([z.string(), z.number(), z.null()]),
    result: z.unknown(),
  }),
  z.strictObject({
    id: z.union([z.string(), z.number(), z.null()]),
    error: z.strictObject({ code: z.string(), message: z.string() }),
  }),
]);

/** A one-line description of a zod failure: the path of the first bad field and why. */
export function describeIssues(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid';
  const path = issue.path.map(String).join('.');
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}

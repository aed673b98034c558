// SPDX-License-Identifier: MIT
/**
 * Suite "P6 xenstore": xenstore operations per second over the Unix socket, against
 * `pciback xenstored` (its own process, so it gets a core of its own as the real one
 * does) and Xen's C xenstored (Debian xen-utils-4.17 through the fakexen shim, trace file
 * sent to /dev/null), both started in this run. Operations: READ, WRITE, DIRECTORY (16
 * children) and a transaction (TRANSACTION_START + WRITE in it + TRANSACTION_END commit),
 * with 1 client and with 64 concurrent clients. Each client is a closed loop with one
 * request in flight on its own connection; each uses its own nodes, so transactions do
 * not conflict by design. The load generator is a lean raw-protocol client (pre-encoded
 * frames, header-only reply parsing) so it costs the measuring process as little as
 * possible. Both daemons run for the whole suite and take turns A B B A within each
 * cell, so a change of load on the machine weighs on both alike. Ratio: ours / C, ops/s;
 * target ≥ 1.
 */
import { connect, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { XS_TYPE } from '../src/abi/index.js';
import {
  encodePathRequest,
  encodeTransactionEndRequest,
  encodeWriteRequest,
  encodeXsMessage,
  utf8Encode,
} from '../src/xenstore/protocol/index.js';
import {
  realXenstoredUnavailable,
  startOurXenstored,
  startRealXenstored,
  type XenstoredHandle,
} from '../test/support/real-xenstored.js';
import { ratioAtLeast, type BenchRatio, type SuiteResult, type ThroughputRow } from './report.js';

/** Options of {@link runXenstoreBench}. */
export interface XenstoreBenchOptions {
  /** Measured time per (daemon, operation, clients) cell, split over two turns. Default 1000 ms. */
  readonly measureMs?: number;
  /** Warm-up before each turn. Default 200 ms. */
  readonly warmupMs?: number;
  /** Concurrency levels. Default [1, 64]. */
  readonly clients?: readonly number[];
}

const OPERATIONS = ['read', 'write', 'directory', 'transaction'] as const;
type Operation = (typeof OPERATIONS)[number];
const DIRECTORY_CHILDREN = 16;
const VALUE = utf8Encode('0123456789abcdef0123456789abcdef');
const RATIO_TARGET = 1;
const HEADER_BYTES = 16;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A raw xenstore connection: sends pre-encoded frames, hands back (type, payload). */
class RawConnection {
  readonly #socket: Socket;
  #pending: Buffer = Buffer.alloc(0);
  onReply: (type: number, payload: Buffer) => void = () => undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#receive(chunk);
    });
    socket.on('error', () => undefined);
  }

  /** Connect, retrying while C xenstored's backlog of 1 answers EAGAIN. */
  static async open(path: string): Promise<RawConnection> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<RawConnection>((resolve, reject) => {
          const socket = connect(path);
          socket.once('connect', () => {
            socket.off('error', reject);
            resolve(new RawConnection(socket));
          });
          socket.once('error', reject);
        });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || attempt > 500) throw e;
        await delay(Math.min(1 + attempt, 20));
      }
    }
  }

  send(frame: Uint8Array): void {
    this.#socket.write(frame);
  }

  close(): void {
    this.#socket.destroy();
  }

  #receive(chunk: Buffer): void {
    let buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (buf.length >= HEADER_BYTES) {
      const len = buf.readUInt32LE(12);
      if (buf.length < HEADER_BYTES + len) break;
      const type = buf.readUInt32LE(0);
      const payload = buf.subarray(HEADER_BYTES, HEADER_BYTES + len);
      buf = buf.subarray(HEADER_BYTES + len);
      this.onReply(type, payload);
    }
    this.#pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
  }
}

function frame(type: number, payload: Uint8Array, txId = 0, reqId = 1): Uint8Array {
  return encodeXsMessage({ type, reqId, txId, payload });
}

/** Counters shared by the clients of one cell. */
interface Tally {
  ops: number;
  conflicts: number;
  errors: number;
  firstError: string | undefined;
}

/**
 * One client's closed loop until `stopAt` (performance.now()). Every completed operation
 * bumps `tally.ops`; a transaction counts when its commit answered OK.
 */
function clientLoop(
  conn: RawConnection,
  op: Operation,
  index: number,
  tally: Tally,
  stopAt: () => number,
): Promise<void> {
  const node = `/bench/c${index}/k`;
  const read = frame(XS_TYPE.READ, encodePathRequest(node));
  const write = frame(XS_TYPE.WRITE, encodeWriteRequest(node, VALUE));
  const directory = frame(XS_TYPE.DIRECTORY, encodePathRequest('/bench/dir'));
  const start = frame(XS_TYPE.TRANSACTION_START, utf8Encode('\0'));
  const writePayload = encodeWriteRequest(node, VALUE);
  const commit = encodeTransactionEndRequest(true);
  let txId = 0;
  let step = 0; // transaction: 0 start, 1 write, 2 end
  const fail = (type: number, payload: Buffer): void => {
    tally.errors++;
    tally.firstError ??= `${op}: reply type ${type} "${payload.toString('latin1').replace(/\0/g, '')}"`;
  };
  return new Promise((resolve) => {
    const next = (): void => {
      if (performance.now() >= stopAt()) {
        resolve();
        return;
      }
      switch (op) {
        case 'read':
          conn.send(read);
          return;
        case 'write':
          conn.send(write);
          return;
        case 'directory':
          conn.send(directory);
          return;
        case 'transaction':
          step = 0;
          conn.send(start);
          return;
      }
    };
    conn.onReply = (type, payload) => {
      if (op !== 'transaction') {
        if (type === XS_TYPE.ERROR) fail(type, payload);
        else tally.ops++;
        next();
        return;
      }
      if (type === XS_TYPE.ERROR) {
        if (step === 2 && payload.toString('latin1').startsWith('EAGAIN')) tally.conflicts++;
        else fail(type, payload);
        next();
        return;
      }
      if (step === 0) {
        txId = Number.parseInt(payload.toString('latin1'), 10);
        step = 1;
        conn.send(frame(XS_TYPE.WRITE, writePayload, txId));
      } else if (step === 1) {
        step = 2;
        conn.send(frame(XS_TYPE.TRANSACTION_END, commit, txId));
      } else {
        tally.ops++;
        next();
      }
    };
    next();
  });
}

/** The nodes the operations use: `/bench/c<i>/k` per client and `/bench/dir`'s children. */
async function prepare(socketPath: string, clients: number): Promise<void> {
  const conn = await RawConnection.open(socketPath);
  let outstanding = 0;
  let failure: string | undefined;
  const done = new Promise<void>((resolve) => {
    conn.onReply = (type, payload) => {
      if (type === XS_TYPE.ERROR) failure ??= payload.toString('latin1');
      if (--outstanding === 0) resolve();
    };
  });
  const send = (path: string): void => {
    outstanding++;
    conn.send(frame(XS_TYPE.WRITE, encodeWriteRequest(path, VALUE)));
  };
  for (let i = 0; i < clients; i++) send(`/bench/c${i}/k`);
  for (let i = 0; i < DIRECTORY_CHILDREN; i++) send(`/bench/dir/child-${i}`);
  await done;
  conn.close();
  if (failure !== undefined) throw new Error(`Cannot prepare the P6 nodes: ${failure}`);
}

interface Cell {
  readonly opsPerSec: number;
  readonly ops: number;
  readonly seconds: number;
  readonly tally: Tally;
}

async function measureCell(
  socketPath: string,
  op: Operation,
  clients: number,
  warmupMs: number,
  measureMs: number,
): Promise<Cell> {
  const conns = await Promise.all(
    Array.from({ length: clients }, () => RawConnection.open(socketPath)),
  );
  const tally: Tally = { ops: 0, conflicts: 0, errors: 0, firstError: undefined };
  let stopAt = Number.POSITIVE_INFINITY;
  try {
    const loops = conns.map((c, i) => clientLoop(c, op, i, tally, () => stopAt));
    await delay(warmupMs);
    const t0 = performance.now();
    const ops0 = tally.ops;
    const conflicts0 = tally.conflicts;
    await delay(measureMs);
    const t1 = performance.now();
    const ops1 = tally.ops;
    stopAt = 0;
    await Promise.all(loops);
    const seconds = (t1 - t0) / 1000;
    return {
      opsPerSec: (ops1 - ops0) / seconds,
      ops: ops1 - ops0,
      seconds,
      tally: { ...tally, conflicts: tally.conflicts - conflicts0 },
    };
  } finally {
    for (const c of conns) c.close();
  }
}

/** A daemon under test and what was measured on it, per `<op>/<clients>`. */
interface Subject {
  readonly xsd: XenstoredHandle;
  readonly cells: Map<string, Cell>;
}

function addCell(subject: Subject, key: string, cell: Cell): void {
  const prev = subject.cells.get(key);
  if (prev === undefined) {
    subject.cells.set(key, cell);
    return;
  }
  const ops = prev.ops + cell.ops;
  const seconds = prev.seconds + cell.seconds;
  subject.cells.set(key, {
    ops,
    seconds,
    opsPerSec: ops / seconds,
    tally: {
      ops: prev.tally.ops + cell.tally.ops,
      conflicts: prev.tally.conflicts + cell.tally.conflicts,
      errors: prev.tally.errors + cell.tally.errors,
      firstError: prev.tally.firstError ?? cell.tally.firstError,
    },
  });
}

/**
 * Measure every cell on every subject. Within a cell the subjects take turns in an
 * A B B A order, each turn half the measured time, so a change in the machine's load
 * during the cell weighs on both alike.
 */
async function measureAll(
  subjects: readonly Subject[],
  options: Required<XenstoreBenchOptions>,
  notes: string[],
): Promise<void> {
  for (const s of subjects) await prepare(s.xsd.socketPath, Math.max(...options.clients));
  const order = [...subjects, ...[...subjects].reverse()];
  for (const clients of options.clients) {
    for (const op of OPERATIONS) {
      const key = `${op}/${clients}`;
      for (const s of order) {
        const cell = await measureCell(
          s.xsd.socketPath,
          op,
          clients,
          options.warmupMs,
          options.measureMs / 2,
        );
        addCell(s, key, cell);
      }
      for (const s of subjects) {
        const cell = s.cells.get(key);
        if (cell === undefined) continue;
        if (cell.tally.errors > 0) {
          notes.push(
            `${s.xsd.name}, ${op} x${clients}: ${cell.tally.errors} error replies (first: ${cell.tally.firstError ?? '?'})`,
          );
        }
        if (cell.tally.conflicts > 0) {
          notes.push(
            `${s.xsd.name}, ${op} x${clients}: ${cell.tally.conflicts} commits answered EAGAIN while measuring (not counted as operations)`,
          );
        }
      }
    }
  }
}

function label(op: Operation, clients: number): string {
  const what = op === 'transaction' ? 'transaction (start + write + end)' : op;
  return `${what}, ${clients} client${clients === 1 ? '' : 's'}`;
}

/** Run the suite. */
export async function runXenstoreBench(options: XenstoreBenchOptions = {}): Promise<SuiteResult> {
  const opts: Required<XenstoreBenchOptions> = {
    measureMs: options.measureMs ?? 1000,
    warmupMs: options.warmupMs ?? 200,
    clients: options.clients ?? [1, 64],
  };
  const throughput: ThroughputRow[] = [];
  const ratios: BenchRatio[] = [];
  const notes: string[] = [];

  const load = (): string =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  const loadBefore = load();
  const started: XenstoredHandle[] = [];
  const oursCells = new Map<string, Cell>();
  let cCells: Map<string, Cell> | undefined;
  try {
    const ours: Subject = { xsd: await startOurXenstored(), cells: oursCells };
    started.push(ours.xsd);
    const subjects: Subject[] = [ours];
    const unavailable = realXenstoredUnavailable('c');
    if (unavailable !== undefined) {
      notes.push(
        `Xen's C xenstored could not be started: ${unavailable}. Only pciback xenstored is reported, without ratios.`,
      );
    } else {
      try {
        const c: Subject = {
          xsd: await startRealXenstored('c', [0], { trace: false }),
          cells: new Map(),
        };
        started.push(c.xsd);
        subjects.push(c);
        cCells = c.cells;
      } catch (e) {
        notes.push(
          `Xen's C xenstored could not be started: ${(e as Error).message}. Only pciback xenstored is reported, without ratios.`,
        );
      }
    }
    await measureAll(subjects, opts, notes);
  } finally {
    for (const xsd of started) await xsd.stop();
  }

  for (const clients of opts.clients) {
    for (const op of OPERATIONS) {
      const key = `${op}/${clients}`;
      const mine = oursCells.get(key);
      const theirs = cCells?.get(key);
      if (mine !== undefined) {
        throughput.push({
          name: `pciback xenstored: ${label(op, clients)}`,
          opsPerSec: mine.opsPerSec,
          ops: mine.ops,
          seconds: mine.seconds,
        });
      }
      if (theirs !== undefined) {
        throughput.push({
          name: `C xenstored: ${label(op, clients)}`,
          opsPerSec: theirs.opsPerSec,
          ops: theirs.ops,
          seconds: theirs.seconds,
        });
      }
      if (mine !== undefined && theirs !== undefined && theirs.opsPerSec > 0) {
        ratios.push(
          ratioAtLeast(
            `ours / C ops/s: ${label(op, clients)}`,
            mine.opsPerSec / theirs.opsPerSec,
            RATIO_TARGET,
          ),
        );
      }
    }
  }
  notes.push(
    `Each cell: the daemons take turns A B B A, each turn ${opts.warmupMs} ms of warm-up then ${opts.measureMs / 2} ms measured (${opts.measureMs} ms per daemon in all); every client keeps one request in flight on its own connection (closed loop) and uses its own node /bench/c<i>/k (value ${VALUE.length} bytes); DIRECTORY lists /bench/dir (${DIRECTORY_CHILDREN} children). The load generator runs in the benchmark process; each daemon is a separate process (pciback xenstored: node dist/src/cli/main.js xenstored; C: Debian xen-utils-4.17 xenstored -N with the fakexen shim, its -T trace linked to /dev/null); both run during the whole suite, one measured at a time. Load average (1, 5, 15 min) before: ${loadBefore}; after: ${load()}: other work on the machine skews the figures.`,
  );
  return {
    suite: 'P6 xenstore',
    description:
      'xenstore operations per second over the Unix socket: READ, WRITE, DIRECTORY and a committed transaction (start + write + end), 1 and 64 concurrent clients, pciback xenstored against Xen’s C xenstored started in the same run (target: ours ≥ 1x).',
    rows: [],
    throughput,
    ratios,
    notes,
  };
}

// SPDX-License-Identifier: MIT
/**
 * A promise queue that runs async jobs one at a time, in the order they were queued: the
 * userspace form of a kernel mutex held across sleeping xenstore calls (`dev_lock`, and
 * the single xenwatch thread that runs every xenbus callback in order).
 */

/** Receives the error of a job that threw or rejected; the queue carries on. */
export type SerialQueueErrorHandler = (err: unknown, label: string) => void;

/**
 * Jobs run strictly one after another. A failing job is reported to the error handler and
 * never stops the queue or reaches the caller as a rejection.
 *
 * @example
 * const q = new SerialQueue((err, label) => logger.error({ err }, label));
 * void q.run('setup', async () => { await xs.write(path, '2'); });
 * await q.whenIdle();
 */
export class SerialQueue {
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;
  readonly #onError: SerialQueueErrorHandler;

  constructor(onError: SerialQueueErrorHandler) {
    this.#onError = onError;
  }

  /** Jobs queued or running. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Queue `job`; the returned promise settles when it has run: with its value, or with
   * `undefined` when it failed (the failure goes to the error handler).
   */
  run<T>(label: string, job: () => Promise<T> | T): Promise<T | undefined> {
    this.#pending++;
    const result = this.#tail.then(async () => {
      try {
        return await job();
      } catch (err) {
        try {
          this.#onError(err, label);
        } catch {
          // A failing error handler must not break the chain.
        }
        return undefined;
      } finally {
        this.#pending--;
      }
    });
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Settles once every job queued so far (and any they queue meanwhile) has run. */
  async whenIdle(): Promise<void> {
    while (this.#pending > 0) await this.#tail;
  }
}

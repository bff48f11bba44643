// The thread pool for the prepare step. One pool per process, sized to the cores.
//
// A hostile or broken input must cost only its own invoice: each thread has a heap cap
// (resourceLimits), each task a deadline counted from when a thread starts it (not while it queues
// behind others), and the thread checks input size and inflated bytes itself. A thread that runs out
// of heap or past its deadline is stopped and replaced by piscina; only its own task fails, with a
// PrepareError naming the limit.
//
// Tasks wait here, not in piscina's queue, and go to piscina only when a thread is free, so a task
// starts the moment it is handed over and its deadline starts then (no message back per task). The
// prepare tasks waiting when a thread comes free go to it together, as one batch (one hand-over there
// and back instead of one per invoice: the hop cost more than a small invoice's prepare). A batch
// that loses its thread (a task over the heap cap, the batch past the deadline) is not failed: each of
// its tasks runs again alone, so that still only the one at fault fails.
import os from 'node:os';
import path from 'node:path';
import Piscina from 'piscina';
import { SealerError } from '../common/errors';
import { DEFAULT_MAX_INFLATED_BYTES } from '../pdf';
import {
  PrepareError,
  type BatchOutcome,
  type PrepareBatch,
  type PrepareInputLimits,
  type PrepareOutcome,
  type PrepareTask,
  type PrepareTaskResult,
  type PrepareThreadTask,
  type RenderOutcome,
  type RenderThreadTask,
  type UpdateOutcome,
  type UpdateTask,
  type UpdateTaskResult,
  type UpdateThreadTask,
} from './prepare-task';

export {
  PrepareError,
  SourceChangedError,
  TRANSIENT_IO_CODES,
  type PrepareErrorKind,
  type PrepareLimit,
  type PrepareTask,
  type PrepareTaskResult,
  type RenderSource,
} from './prepare-task';

export interface PrepareLimits extends PrepareInputLimits {
  /** Old-generation heap per thread, in MB (piscina resourceLimits.maxOldGenerationSizeMb). */
  maxHeapMb: number;
  /** Milliseconds one task may run in its thread before the thread is stopped. */
  deadlineMs: number;
}

/** Defaults: ordinary invoices use a few MB of heap and a few ms; these leave two orders of margin. */
export const DEFAULT_PREPARE_LIMITS: Readonly<PrepareLimits> = {
  maxHeapMb: 512,
  deadlineMs: 30_000,
  maxInputBytes: 64 * 1024 * 1024,
  maxInflatedBytes: DEFAULT_MAX_INFLATED_BYTES,
};

/**
 * Starts a task's deadline when its thread begins it and calls `expire` when it is over; returns a
 * cancel function. The default is a timer of `ms`; tests inject their own clock.
 */
export type DeadlineTimer = (ms: number, expire: () => void, sourcePath: string) => () => void;

const realTimer: DeadlineTimer = (ms, expire) => {
  const timer = setTimeout(expire, ms);
  return () => clearTimeout(timer);
};

export interface PreparePoolOptions extends Partial<PrepareLimits> {
  /** threads; default one per core (one fewer was tried: on this shared 2-core machine one thread
   * sealed 117-206 invoices/s against 248-328 with two, at no less CPU per invoice) */
  threads?: number;
  deadlineTimer?: DeadlineTimer;
  /** Told of a thread that failed with no task on it (piscina replaces it); e.g. a logger's warn. */
  onThreadError?: (err: Error) => void;
}

/** Below this a thread cannot load pdf-lib and pades, and every task would fail as "out of heap". */
export const MIN_HEAP_MB = 64;

/** Young-generation heap per prepare thread, in MB (piscina resourceLimits.maxYoungGenerationSizeMb). */
const THREAD_YOUNG_GENERATION_MB = 6;

/** A pool option that is not a positive integer. */
export class PrepareConfigError extends SealerError {}

interface Running {
  sourcePath: string;
  controller: AbortController;
  cancelDeadline?: () => void;
  deadlineHit: boolean;
}

function checkLimit(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new PrepareConfigError(
      `prepare pool option ${name} must be an integer of at least ${min}, got ${value}`,
    );
  }
  return value;
}

/** Most prepare tasks one hand-over carries. */
const MAX_BATCH = 16;

/** A task waiting for a thread: `go` hands it over alone; a prepare task may go in a batch instead. */
interface Waiter {
  go: () => void;
  fail: (err: Error) => void;
  batchable?: BatchMember;
}

interface BatchMember {
  task: PrepareTask;
  signal?: AbortSignal;
  entry: Running;
  settled: boolean;
  resolve: (result: PrepareTaskResult) => void;
  reject: (err: PrepareError) => void;
}

export class PreparePool {
  readonly limits: Readonly<PrepareLimits>;
  private readonly pool: Piscina;
  private readonly running = new Map<number, Running>();
  private readonly deadlineTimer: DeadlineTimer;
  private nextTaskId = 0;
  /** threads the pool keeps (piscina's min and max) */
  private readonly size: number;
  /** tasks handed to piscina and not yet settled: at most `size`, so piscina never queues one */
  private handedOver = 0;
  /** tasks waiting for a free thread, first come first served */
  private readonly waiting: Waiter[] = [];
  private closed = false;

  constructor(options: PreparePoolOptions = {}) {
    const threads = checkLimit('threads', options.threads ?? Math.max(1, os.availableParallelism()));
    const limits: PrepareLimits = { ...DEFAULT_PREPARE_LIMITS };
    for (const key of Object.keys(limits) as (keyof PrepareLimits)[]) {
      limits[key] = checkLimit(
        key,
        options[key] ?? DEFAULT_PREPARE_LIMITS[key],
        key === 'maxHeapMb' ? MIN_HEAP_MB : 1,
      );
    }
    this.limits = Object.freeze(limits);
    this.deadlineTimer = options.deadlineTimer ?? realTimer;
    this.size = threads;
    this.pool = new Piscina({
      filename: path.join(__dirname, 'prepare-task.js'),
      name: 'prepareInThread',
      minThreads: threads,
      maxThreads: threads,
      // One task per thread at a time, so a thread's heap and deadline are its task's.
      concurrentTasksPerWorker: 1,
      // A small young generation: a prepare's garbage is short-lived, and V8's default young space per
      // thread stayed resident (20,000 invoices: worker peak RSS 450-459 MB before, 407-415 after).
      resourceLimits: {
        maxOldGenerationSizeMb: limits.maxHeapMb,
        maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB,
      },
    });
    // A thread lost with no task on it is replaced by piscina and no invoice failed; without a
    // listener the event would throw and take the process down.
    const onThreadError = options.onThreadError ?? ((): void => undefined);
    this.pool.on('error', (err: Error) => onThreadError(err));
  }

  /**
   * Prepares one invoice in a thread. Rejects only with PrepareError: `unsealable` for an input that
   * cannot be sealed as it is (including every limit), `transient` where another attempt may succeed.
   * `signal` aborts the task from outside (e.g. shutdown); that is transient.
   */
  async run(task: PrepareTask, options: { signal?: AbortSignal } = {}): Promise<PrepareTaskResult> {
    // A free thread takes it alone at once; otherwise it waits, and may go with others in a batch.
    if (this.closed || (this.handedOver < this.size && this.waiting.length === 0))
      return this.runAlone(task, options.signal);
    return new Promise<PrepareTaskResult>((resolve, reject) => {
      const { signal } = options;
      const member: BatchMember = {
        task,
        signal,
        entry: { sourcePath: task.sourcePath, controller: new AbortController(), deadlineHit: false },
        settled: false,
        resolve: (result) => {
          if (member.settled) return;
          member.settled = true;
          signal?.removeEventListener('abort', onAbort);
          resolve(result);
        },
        reject: (err) => {
          if (member.settled) return;
          member.settled = true;
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const waiter: Waiter = {
        // A batch of this one and those waiting behind it (threadDone): never handed over alone.
        go: () => undefined,
        fail: (err) => member.reject(this.failure(err, member.entry)),
        batchable: member,
      };
      // Aborted while waiting or while its batch runs: it fails now; a batch's result for it is dropped.
      const onAbort = (): void => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        member.reject(this.failure(signal?.reason, member.entry));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** `first`: ahead of every task waiting (a task of a lost batch has waited its turn already). */
  private runAlone(task: PrepareTask, signal?: AbortSignal, first = false): Promise<PrepareTaskResult> {
    return this.runInThread(
      task.sourcePath,
      signal,
      'prepareInThread',
      (limits) => ({ ...task, limits }),
      first,
    );
  }

  /** A thread was handed the batch `members` (counted in handedOver): runs it, and each task the
   * batch did not settle (not started, or the thread lost) again alone. */
  private async runBatch(members: BatchMember[]): Promise<void> {
    const taskId = ++this.nextTaskId;
    const entry: Running = {
      sourcePath: members[0]!.task.sourcePath,
      controller: new AbortController(),
      deadlineHit: false,
    };
    this.running.set(taskId, entry);
    let again: BatchMember[] = [];
    try {
      this.startDeadline(entry);
      const limits = {
        maxInputBytes: this.limits.maxInputBytes,
        maxInflatedBytes: this.limits.maxInflatedBytes,
      };
      const batch: PrepareBatch = {
        tasks: members.map((m) => ({ ...m.task, limits })),
        startWithinMs: Math.floor(this.limits.deadlineMs / 2),
      };
      const outcomes = (await this.pool.run(batch, {
        name: 'prepareManyInThread',
        signal: entry.controller.signal,
      })) as BatchOutcome[];
      members.forEach((member, i) => {
        const outcome = outcomes[i];
        if (!outcome || 'notStarted' in outcome) again.push(member);
        else if (outcome.ok) member.resolve(outcome.result);
        else member.reject(PrepareError.fromFailure(outcome.failure));
      });
    } catch (err) {
      // The thread was lost with the batch on it (a task over the heap cap, the batch past its
      // deadline, the pool closing). A task alone was at fault itself; of several, which one is not
      // known, so each runs again alone.
      if (members.length === 1) members[0]!.reject(this.failure(err, entry));
      else again = members;
    } finally {
      entry.cancelDeadline?.();
      this.running.delete(taskId);
      this.threadDone();
    }
    // In their order, ahead of the tasks that came after them.
    for (const member of again.filter((m) => !m.settled).reverse()) {
      this.runAlone(member.task, member.signal, true).then(member.resolve, member.reject);
    }
  }

  /**
   * A B-LT/B-LTA update of a sealed file (DSS, document timestamp placeholder) in a thread, under the
   * same heap, deadline and inflate limits as prepare: loading the sealed PDF is the same work again.
   */
  async runUpdate(sourcePath: string, task: UpdateTask): Promise<UpdateTaskResult> {
    return this.runInThread<UpdateThreadTask, UpdateTaskResult>(
      sourcePath,
      undefined,
      'updateInThread',
      (limits) => ({ sourcePath, task, limits }),
    );
  }

  /**
   * The PDF a rendered invoice's task gives (task.render), rendered in a thread under prepare's limits:
   * the very bytes its seal follows, for comparing with a sealed file found at the target.
   */
  async render(task: PrepareTask): Promise<Uint8Array> {
    return this.runInThread<RenderThreadTask, Uint8Array>(
      task.sourcePath,
      undefined,
      'renderInThread',
      (limits) => ({
        task,
        limits,
      }),
    );
  }

  private async runInThread<T, R>(
    sourcePath: string,
    signal: AbortSignal | undefined,
    name: string,
    build: (limits: PrepareInputLimits) => T,
    first = false,
  ): Promise<R> {
    const taskId = ++this.nextTaskId;
    const entry: Running = { sourcePath, controller: new AbortController(), deadlineHit: false };
    const onAbort = (): void => entry.controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    this.running.set(taskId, entry);
    const threadTask = build({
      maxInputBytes: this.limits.maxInputBytes,
      maxInflatedBytes: this.limits.maxInflatedBytes,
    });
    let handedOver = false;
    try {
      await this.freeThread(entry.controller.signal, first);
      handedOver = true;
      // A thread is free, so piscina starts the task now: its deadline runs from here.
      this.startDeadline(entry);
      const outcome = (await this.pool.run(threadTask, {
        name,
        signal: entry.controller.signal,
      })) as PrepareOutcome | UpdateOutcome | RenderOutcome;
      if (!outcome.ok) throw PrepareError.fromFailure(outcome.failure);
      return outcome.result as R;
    } catch (err) {
      throw this.failure(err, entry);
    } finally {
      entry.cancelDeadline?.();
      this.running.delete(taskId);
      signal?.removeEventListener('abort', onAbort);
      if (handedOver) this.threadDone();
    }
  }

  /** Resolves when fewer than `size` tasks are with piscina (and counts this one); rejects on abort. */
  private freeThread(signal: AbortSignal, first = false): Promise<void> {
    signal.throwIfAborted();
    if (this.closed) return Promise.reject(new Error('the prepare pool is closed'));
    if (this.handedOver < this.size && this.waiting.length === 0) {
      this.handedOver++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        go: (): void => {
          signal.removeEventListener('abort', onAbort);
          this.handedOver++;
          resolve();
        },
        fail: (err: Error): void => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (first) this.waiting.unshift(waiter);
      else this.waiting.push(waiter);
    });
  }

  /** A task handed to piscina settled: the next waiting one takes its thread, with the prepare tasks
   * waiting right behind it when it is one. */
  private threadDone(): void {
    this.handedOver--;
    if (this.closed) return;
    const next = this.waiting.shift();
    if (!next) return;
    if (!next.batchable) return next.go();
    const members = [next.batchable];
    while (members.length < MAX_BATCH && this.waiting[0]?.batchable) {
      members.push(this.waiting.shift()!.batchable!);
    }
    this.handedOver++;
    // runBatch settles every member itself, whatever happens to the batch.
    this.runBatch(members).catch(() => undefined);
  }

  /**
   * Whether a thread takes and finishes a trivial task within `deadlineMs` (for /healthz): the real
   * prepare entry point on an empty path, which fails at its first open() with no PDF work. It queues
   * behind invoices in hand like any task, so a pool too jammed to take it in time counts as not alive;
   * the deadline aborts it (a queued task leaves the queue, a running one loses its thread).
   */
  async alive(deadlineMs = 2000): Promise<boolean> {
    const signal = AbortSignal.timeout(deadlineMs);
    const probe: Pick<PrepareThreadTask, 'sourcePath' | 'limits'> = {
      sourcePath: '',
      limits: { maxInputBytes: 0, maxInflatedBytes: 0 },
    };
    let handedOver = false;
    try {
      await this.freeThread(signal);
      handedOver = true;
      const outcome = (await this.pool.run(probe, { name: 'prepareInThread', signal })) as PrepareOutcome;
      // Only the handler's own answer counts: a failed open of '' (ENOENT) is the expected outcome.
      return typeof outcome === 'object' && outcome !== null && 'ok' in outcome;
    } catch {
      return false;
    } finally {
      if (handedOver) this.threadDone();
    }
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    // Tasks still waiting for a thread end as piscina ends the ones it queued: not finished (transient).
    for (const waiter of this.waiting.splice(0)) waiter.fail(new Error('the prepare pool is closing'));
    for (const entry of this.running.values()) entry.cancelDeadline?.();
    await this.pool.destroy();
  }

  /** The task's deadline, from now (it was just handed to a free thread). */
  private startDeadline(entry: Running): void {
    entry.cancelDeadline = this.deadlineTimer(
      this.limits.deadlineMs,
      () => {
        entry.deadlineHit = true;
        entry.controller.abort(new Error(`prepare deadline of ${this.limits.deadlineMs} ms`));
      },
      entry.sourcePath,
    );
  }

  /** What a rejection from piscina means for the task's invoice. */
  private failure(err: unknown, entry: Running): PrepareError {
    if (err instanceof PrepareError) return err;
    const { sourcePath } = entry;
    if (entry.deadlineHit) {
      return new PrepareError({
        kind: 'unsealable',
        sourcePath,
        limit: 'deadline',
        message: `${sourcePath}: prepare ran past its deadline of ${this.limits.deadlineMs} ms (deadlineMs); its thread was stopped`,
        cause: err,
      });
    }
    if ((err as NodeJS.ErrnoException)?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      return new PrepareError({
        kind: 'unsealable',
        sourcePath,
        limit: 'heap',
        message: `${sourcePath}: prepare ran out of its thread's heap of ${this.limits.maxHeapMb} MB (maxHeapMb); its thread was replaced`,
        cause: err,
      });
    }
    // Aborted from outside, the pool closing, a thread that died of something else: not the input's
    // fault as far as we know, so another attempt is allowed (BullMQ's attempts bound it).
    return new PrepareError({
      kind: 'transient',
      sourcePath,
      message: `${sourcePath}: prepare did not finish: ${(err as Error)?.message ?? String(err)}`,
      cause: err,
    });
  }
}

/**
 * Slots for the jobs a process holds. At most `working` jobs work at once; a job waiting on something
 * that needs none of this process's work (a signature from the provider, 300 ms away on a slow one)
 * lends its slot to the next job, up to `lendable` jobs lent at once. So a slow provider is hidden by
 * more jobs waiting, not by more jobs working.
 *
 * A job whose wait ends goes on at once: taking the slot back never waits (the working count may pass
 * its bound for a moment, and no new job starts until it is back under), so lending cannot deadlock.
 *
 * Jobs waiting to start queue by a key (the tenant), and a free slot goes to each key in turn: a
 * tenant whose worker fetched a thousand jobs does not hold back one whose night came later.
 */
export class WorkSlots {
  private working = 0;
  private lent = 0;
  /** Jobs waiting to start, by key; a key is here only while it has some, in the order served. */
  private readonly waiting = new Map<string, (() => void)[]>();
  private queued = 0;

  constructor(
    readonly maxWorking: number,
    readonly maxLent: number,
  ) {
    if (!Number.isInteger(maxWorking) || maxWorking < 1) {
      throw new RangeError(`working slots must be a count of at least 1, not ${maxWorking}`);
    }
    if (!Number.isInteger(maxLent) || maxLent < 0) {
      throw new RangeError(`slots lent while waiting must be a count, not ${maxLent}`);
    }
  }

  /** Jobs in hand at most: working plus lent. */
  get capacity(): number {
    return this.maxWorking + this.maxLent;
  }

  /** Jobs working, lent, and waiting to start. */
  counts(): { working: number; lent: number; queued: number } {
    return { working: this.working, lent: this.lent, queued: this.queued };
  }

  /** Runs `task` in a slot once one is free (waiting in `key`'s turn); the task lends it with
   * `slot.lend(wait)`. */
  async run<T>(task: (slot: WorkSlot) => Promise<T>, key = ''): Promise<T> {
    if (this.working >= this.maxWorking || this.queued > 0) {
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(key);
        if (queue) queue.push(resolve);
        else this.waiting.set(key, [resolve]);
        this.queued++;
      });
    } else {
      this.working++;
    }
    const slot = new LendableSlot(this);
    try {
      return await task(slot);
    } finally {
      slot.ended();
      this.working--;
      this.admit();
    }
  }

  /** @internal moves a working job to lent, if there is room; whether it did. */
  lendOne(): boolean {
    if (this.lent >= this.maxLent) return false;
    this.working--;
    this.lent++;
    this.admit();
    return true;
  }

  /** @internal a lent job works again, at once. */
  takeBack(): void {
    this.lent--;
    this.working++;
  }

  private admit(): void {
    while (this.working < this.maxWorking && this.queued > 0) {
      // The first key in the map is the one whose turn it is; served, it goes to the back.
      const [key, queue] = this.waiting.entries().next().value as [string, (() => void)[]];
      const start = queue.shift()!;
      this.waiting.delete(key);
      if (queue.length > 0) this.waiting.set(key, queue);
      this.queued--;
      this.working++;
      start();
    }
  }
}

/** What a task holds: its slot, which it may lend while it waits. */
export interface WorkSlot {
  /** Awaits `wait` with the slot lent (when there is room to lend), and takes it back after. */
  lend<T>(wait: () => Promise<T>): Promise<T>;
}

/** A slot that needs no lending (a job run outside WorkSlots). */
export const UNLENT_SLOT: WorkSlot = { lend: (wait) => wait() };

class LendableSlot implements WorkSlot {
  /** Waits under way that lent the slot (a task may wait on several things at once). */
  private lends = 0;
  private lentOut = false;
  private done = false;

  constructor(private readonly slots: WorkSlots) {}

  async lend<T>(wait: () => Promise<T>): Promise<T> {
    if (this.lends++ === 0 && !this.done) this.lentOut = this.slots.lendOne();
    try {
      return await wait();
    } finally {
      if (--this.lends === 0 && this.lentOut) {
        this.lentOut = false;
        this.slots.takeBack();
      }
    }
  }

  /** The task ended: a wait it did not await must not move the counts after its slot is gone. */
  ended(): void {
    this.done = true;
    if (this.lentOut) {
      this.lentOut = false;
      this.slots.takeBack();
    }
  }
}

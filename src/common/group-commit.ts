// Group commit: many concurrent callers, each awaiting its own durable write, share one write. A caller
// submits its item and awaits; the items that arrive in the same turn of the event loop, or while the
// previous group is being written, are written together by one `write` call (one fsync, one
// transaction, one Redis round trip). Alone, an item waits for nothing but its own write; under load
// the groups grow by themselves. Each caller's promise settles only once its group's write has.

export interface GroupCommitOptions {
  /** Most items in one group; the rest wait for the next (default 1,000). */
  maxItems?: number;
  /**
   * When a group's write fails, write its items again one by one, so that one bad item fails alone
   * (for writes that are all-or-none, such as a database transaction); once two in a row fail alone
   * as well, the rest fail with the group's error (the medium is down). Default false: every item of
   * the group fails with the group's error (for writes where a failure is the medium's, not an item's).
   */
  isolateFailures?: boolean;
  /** Called each time the last waiting group has been written. */
  onIdle?: () => void;
}

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<T, R = void> {
  private queue: Pending<T, R>[] = [];
  private running = false;
  private readonly maxItems: number;
  private readonly isolate: boolean;
  private readonly onIdle?: () => void;

  /**
   * `write` writes a group and returns one result per item, in order (or nothing, for `R = void`).
   * It must not throw for one item's sake unless `isolateFailures` is set.
   */
  constructor(
    private readonly write: (items: T[]) => Promise<R[] | void>,
    options: GroupCommitOptions = {},
  ) {
    this.maxItems = Math.max(1, options.maxItems ?? 1000);
    this.isolate = options.isolateFailures ?? false;
    this.onIdle = options.onIdle;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      // The group starts on the next turn: items submitted by the same batch of callbacks join it.
      if (!this.running) {
        this.running = true;
        // drain never rejects: commit hands every error to its items' promises.
        setImmediate(() => {
          this.drain().catch(() => undefined);
        });
      }
    });
  }

  /** Items waiting for a write (not counting those being written now). */
  get pending(): number {
    return this.queue.length;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0, this.maxItems);
        await this.commit(group);
      }
    } finally {
      this.running = false;
    }
    this.onIdle?.();
  }

  /** Nothing waiting and nothing being written. */
  get idle(): boolean {
    return !this.running && this.queue.length === 0;
  }

  private async commit(group: Pending<T, R>[]): Promise<void> {
    try {
      const results = await this.write(group.map((p) => p.item));
      group.forEach((p, i) => p.resolve((results ? results[i] : undefined) as R));
    } catch (err) {
      if (!this.isolate || group.length === 1) {
        for (const p of group) p.reject(err);
        return;
      }
      // One by one, so a bad item fails alone; but when the first two fail alone too, the write itself
      // is failing (a database gone): the rest fail at once rather than wait out one timeout each.
      let failedInARow = 0;
      for (const [i, p] of group.entries()) {
        if (failedInARow >= 2) {
          for (const rest of group.slice(i)) rest.reject(err);
          return;
        }
        try {
          const [result] = (await this.write([p.item])) ?? [];
          p.resolve(result as R);
          failedInARow = 0;
        } catch (one) {
          p.reject(one);
          failedInARow++;
        }
      }
    }
  }
}

/** One GroupCommit per key (a folder, a tenant, a run), made on first use. */
export class KeyedGroupCommit<T, R = void> {
  private readonly groups = new Map<string, GroupCommit<T, R>>();

  constructor(
    private readonly write: (key: string, items: T[]) => Promise<R[] | void>,
    private readonly options: GroupCommitOptions = {},
  ) {}

  submit(key: string, item: T): Promise<R> {
    let group = this.groups.get(key);
    if (!group) {
      const made: GroupCommit<T, R> = new GroupCommit<T, R>((items) => this.write(key, items), {
        ...this.options,
        // Forgotten once idle, so a night over many folders does not keep one per folder forever.
        onIdle: () => {
          if (made.idle && this.groups.get(key) === made) this.groups.delete(key);
          this.options.onIdle?.();
        },
      });
      group = made;
      this.groups.set(key, group);
    }
    return group.submit(item);
  }
}

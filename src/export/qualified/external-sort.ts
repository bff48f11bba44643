// An external merge sort with a bound on the items held: items are buffered up to a limit, each full
// buffer is sorted and written to a run file (JSON lines) in a temporary folder of its own, and the
// runs are merged through a small heap. Everything that fits in one buffer is sorted in memory.
import fs from 'node:fs';
import path from 'node:path';

/** How an item becomes one line of a run file and back; the line must hold no LF (JSON does not). */
export interface RunCodec<T> {
  encode(item: T): string;
  decode(line: string): T;
}

export interface ExternalSortOptions<T> {
  compare: (a: T, b: T) => number;
  codec: RunCodec<T>;
  /** the most items buffered before a run is written (≥ 1) */
  maxInMemory: number;
  /** the folder under which the temporary folder is made, when a run is first written */
  tmpParent: string;
  /** told of each run written and of the buffer's size before it is spilled */
  onSpill?: (bufferedItems: number) => void;
}

/** Bytes of run text written per write call, and read per chunk when merging. */
const IO_CHUNK = 64 * 1024;

/** The most items `sorted` hands over at once. */
const BATCH = 1024;

/** Reads a run file a chunk at a time, decoding the whole lines of each chunk at once. */
class RunCursor<T> {
  private readonly stream: fs.ReadStream;
  private readonly chunks: AsyncIterator<string>;
  private items: T[] = [];
  private at = 0;
  private tail = '';
  private ended = false;

  constructor(
    readonly file: string,
    private readonly codec: RunCodec<T>,
  ) {
    this.stream = fs.createReadStream(file, { encoding: 'utf8', highWaterMark: IO_CHUNK });
    this.chunks = this.stream[Symbol.asyncIterator]() as AsyncIterator<string>;
  }

  get head(): T {
    return this.items[this.at]!;
  }

  /** Moves to the next item already read; false when those ran out (then `load`). */
  step(): boolean {
    this.at++;
    return this.at < this.items.length;
  }

  /** Reads on until there is an item; false when the run is done. */
  async load(): Promise<boolean> {
    while (this.at >= this.items.length) {
      if (this.ended) return false;
      const chunk = await this.chunks.next();
      if (chunk.done) {
        this.ended = true;
        if (this.tail !== '') throw new Error(`sort run ${this.file} ends inside a line`);
        return false;
      }
      const text = this.tail + chunk.value;
      const cut = text.lastIndexOf('\n');
      this.tail = text.slice(cut + 1);
      this.items =
        cut === -1
          ? []
          : text
              .slice(0, cut)
              .split('\n')
              .map((l) => this.codec.decode(l));
      this.at = 0;
    }
    return true;
  }

  close(): void {
    this.stream.destroy();
  }
}

/** A binary min-heap of run cursors, ordered by their heads. */
class CursorHeap<T> {
  readonly cursors: RunCursor<T>[] = [];

  constructor(private readonly compare: (a: T, b: T) => number) {}

  get size(): number {
    return this.cursors.length;
  }

  push(c: RunCursor<T>): void {
    const h = this.cursors;
    h.push(c);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.compare(h[i]!.head, h[parent]!.head) >= 0) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  /** The cursor with the least head stays on top; call after its head changed. */
  siftDownTop(): void {
    const h = this.cursors;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let least = i;
      if (l < h.length && this.compare(h[l]!.head, h[least]!.head) < 0) least = l;
      if (r < h.length && this.compare(h[r]!.head, h[least]!.head) < 0) least = r;
      if (least === i) return;
      [h[i], h[least]] = [h[least]!, h[i]!];
      i = least;
    }
  }

  popTop(): void {
    const h = this.cursors;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.siftDownTop();
    }
  }
}

/**
 * Push every item (spilling whenever `full`), then iterate `sorted()` once; `dispose()` (always, in a finally) closes the runs and
 * removes the temporary folder, whether the sort finished, failed or was abandoned.
 */
export class ExternalSorter<T> {
  private buffer: T[] = [];
  private readonly runs: string[] = [];
  private readonly cursors = new Set<RunCursor<T>>();
  private dir: string | undefined;
  private disposed = false;
  private added = 0;

  constructor(private readonly options: ExternalSortOptions<T>) {
    if (!Number.isSafeInteger(options.maxInMemory) || options.maxInMemory < 1) {
      throw new RangeError(`maxInMemory ${options.maxInMemory} is not a positive count`);
    }
  }

  /** Items added so far. */
  get count(): number {
    return this.added;
  }

  /** Items in the buffer now. */
  get buffered(): number {
    return this.buffer.length;
  }

  /** The temporary folder, once a run has been written. */
  get tmpDir(): string | undefined {
    return this.dir;
  }

  /** Run files written so far. */
  get spilledRuns(): number {
    return this.runs.length;
  }

  /**
   * Whether the buffer holds maxInMemory items: `spill` before the next `push`. Checked before a
   * push, not after: an input of exactly maxInMemory items is sorted in memory.
   */
  get full(): boolean {
    return this.buffer.length >= this.options.maxInMemory;
  }

  push(item: T): void {
    if (this.full) throw new Error('external sort buffer is full: spill first');
    this.buffer.push(item);
    this.added++;
  }

  /**
   * Every item pushed, in order, a batch at a time (at most BATCH items; a promise per batch or run
   * chunk, not per item). Once runs were written, the rest of the buffer is one more run.
   */
  async *sorted(): AsyncGenerator<T[], void, undefined> {
    if (this.runs.length === 0) {
      const items = this.buffer.sort(this.options.compare);
      this.buffer = [];
      for (let i = 0; i < items.length; i += BATCH) yield items.slice(i, i + BATCH);
      return;
    }
    // The last buffer goes to disk too, so that the merge holds a chunk per run, not a buffer more.
    if (this.buffer.length > 0) await this.spill();
    const heap = new CursorHeap<T>(this.options.compare);
    for (const file of this.runs) {
      const cursor = new RunCursor(file, this.options.codec);
      this.cursors.add(cursor);
      // Each run has at least one item: only a non-empty buffer is spilled.
      if (await cursor.load()) heap.push(cursor);
    }
    let batch: T[] = [];
    while (heap.size > 0) {
      const top = heap.cursors[0]!;
      batch.push(top.head);
      if (top.step() || (await top.load())) heap.siftDownTop();
      else {
        heap.popTop();
        top.close();
        this.cursors.delete(top);
      }
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.buffer = [];
    for (const cursor of this.cursors) cursor.close();
    this.cursors.clear();
    if (this.dir !== undefined) await fs.promises.rm(this.dir, { recursive: true, force: true });
  }

  /** Sorts the buffer and writes it as a run file; the buffer is then empty. */
  async spill(): Promise<void> {
    if (this.disposed) throw new Error('external sort used after dispose');
    this.dir ??= await fs.promises.mkdtemp(path.join(this.options.tmpParent, 'sealer-data-export-'));
    const items = this.buffer.sort(this.options.compare);
    this.options.onSpill?.(items.length);
    this.buffer = [];
    const file = path.join(this.dir, `run-${String(this.runs.length).padStart(5, '0')}.jsonl`);
    // Listed before it is written, so that dispose removes a half-written run too.
    this.runs.push(file);
    const handle = await fs.promises.open(file, 'wx');
    try {
      let text = '';
      for (const item of items) {
        text += this.options.codec.encode(item) + '\n';
        if (text.length >= IO_CHUNK) {
          await handle.write(text);
          text = '';
        }
      }
      if (text !== '') await handle.write(text);
    } finally {
      await handle.close();
    }
  }
}

// A budget of bytes held at once, shared first come, first served: a worker holds hundreds of invoices
// so that provider latency is hidden, and this keeps hundreds of large PDFs from being held together.

/** Gives back what acquire took; calling it again does nothing. */
export type Release = () => void;

export class ByteBudget {
  private held = 0;
  private readonly waiting: { bytes: number; grant: (release: Release) => void }[] = [];

  /** `limit`: the most bytes held at once (a positive integer). */
  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new RangeError(`byte budget ${limit} is not a count`);
  }

  /** Bytes held now. */
  get inUse(): number {
    return this.held;
  }

  /** Callers waiting for bytes. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Resolves once `bytes` fit beside what is held (in order of asking: a large request is not passed
   * over by small ones forever); a request larger than the whole budget (Infinity included) waits
   * until nothing is held, then runs alone. NaN is refused.
   */
  acquire(bytes: number): Promise<Release> {
    // NaN would never fit, and every request behind it would wait for ever.
    if (Number.isNaN(bytes)) return Promise.reject(new RangeError('bytes to hold must be a number'));
    const n = Math.min(Math.max(0, Math.ceil(bytes)), this.limit);
    return new Promise((grant) => {
      this.waiting.push({ bytes: n, grant });
      this.grantWaiting();
    });
  }

  private grantWaiting(): void {
    while (this.waiting.length > 0 && this.held + this.waiting[0]!.bytes <= this.limit) {
      const { bytes, grant } = this.waiting.shift()!;
      this.held += bytes;
      let released = false;
      grant(() => {
        if (released) return;
        released = true;
        this.held -= bytes;
        this.grantWaiting();
      });
    }
  }
}

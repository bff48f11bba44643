// Seeded pseudo-random draws for fault injection: the same seed and the same requests give the same
// faults, so a test can be exact. Each stream (rule x endpoint x purpose) counts its own draws, so
// traffic on one endpoint never shifts the faults of another. HMAC-SHA-256 from node:crypto is the
// generator: no hand-rolled PRNG, and a string seed works as well as a number.
import { createHmac, randomBytes } from 'node:crypto';

export class SeededDraws {
  private readonly counters = new Map<string, number>();

  constructor(readonly seed: string = randomBytes(8).toString('hex')) {}

  /** The next number in [0, 1) of `stream`: the top 48 bits of HMAC(seed, "<stream>#<n>"). */
  next(stream: string): number {
    const n = this.counters.get(stream) ?? 0;
    this.counters.set(stream, n + 1);
    const mac = createHmac('sha256', this.seed).update(`${stream}#${n}`).digest();
    return mac.readUIntBE(0, 6) / 2 ** 48;
  }
}

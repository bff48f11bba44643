// A TimestampSource over the provider's own TSA (CSC signatures/timestamp). The CSC client only carries
// the token; here it is checked like any TSA's reply (imprint, nonce, TSA certificate and chain) before
// a seal uses it, and the requests in flight are bounded so a batch of hundreds does not flood the TSA.
import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import { checkTimestampToken, TimestampError, type TimestampSource, type TimestampToken } from '../pades';

export interface ProviderTimestampSourceOptions {
  /** Sends one signatures/timestamp request: SHA-256 digest and nonce in, the token's DER out. */
  request: (digest: Buffer, nonce: Buffer) => Promise<Buffer>;
  trustRootsDer: Buffer[];
  /** Requests in flight at once. */
  maxConcurrent: number;
  /** Tries per timestamp; a reply that fails the checks counts as a failed try. */
  attempts: number;
  description: string;
  now?: () => Date;
  /** Whether an error from `request` is worth another try (the CSC error's kind says). */
  retryable: (err: unknown) => boolean;
}

export class ProviderTimestampSource implements TimestampSource {
  readonly description: string;
  readonly stats = { requests: 0 };
  private readonly limit: pLimit.Limit;

  constructor(private readonly o: ProviderTimestampSourceOptions) {
    this.description = o.description;
    this.limit = pLimit(o.maxConcurrent);
  }

  timestamp(digest: Buffer): Promise<TimestampToken> {
    return this.limit(() => this.withAttempts(digest));
  }

  private async withAttempts(digest: Buffer): Promise<TimestampToken> {
    let last: unknown;
    for (let attempt = 1; attempt <= this.o.attempts; attempt++) {
      const nonce = randomBytes(12);
      nonce[0]! &= 0x7f; // a positive INTEGER as the TSA encodes it
      try {
        this.stats.requests++;
        const token = await this.o.request(digest, nonce);
        return checkTimestampToken(token, {
          digest,
          nonce,
          trustedRootsDer: this.o.trustRootsDer,
          now: this.o.now?.(),
        });
      } catch (err) {
        last = err;
        if (!(err instanceof TimestampError) && !this.o.retryable(err)) break;
      }
    }
    throw last instanceof TimestampError
      ? last
      : new TimestampError(
          this.o.retryable(last) ? 'transient' : 'refused',
          `${this.description}: ${(last as Error)?.message ?? String(last)}`,
          { cause: last },
        );
  }
}

// What SadManager.reserve() hands out: the right to send a number of hashes to signatures/signHash.
// A SCAL1 reservation carries a SAD that signs any hashes; a SCAL2 one keeps its SAD private and gives
// it up only for exactly the hashes it was bound to, so it cannot be spent on others by mistake.
import { CscError } from './csc-error';

const SIGN_HASH = 'signatures/signHash';

export class Scal1Reservation {
  readonly scal = 1 as const;

  constructor(
    readonly sad: string,
    readonly expiresAt: number,
    /** Signatures reserved on the SAD: the batch must hold exactly this many hashes. */
    readonly count: number,
    /** `credential-token`: a credential-scope OAuth2 token standing in for the SAD (sent as the Bearer). */
    readonly kind: 'sad' | 'credential-token' = 'sad',
  ) {}

  /** The SAD for a batch of `hashes`; refuses a batch of another size than was reserved. */
  sadFor(hashes: readonly Buffer[], credentialId: string): string {
    if (hashes.length !== this.count) {
      throw new CscError({
        endpoint: SIGN_HASH,
        retryable: false,
        detail: `credential ${credentialId}: ${hashes.length} hashes sent under a reservation of ${this.count} signatures`,
      });
    }
    return this.sad;
  }

  toJSON(): Record<string, unknown> {
    return { scal: 1, kind: this.kind, expiresAt: this.expiresAt, count: this.count };
  }
}

export class Scal2Reservation {
  readonly scal = 2 as const;
  /** Copies of the hashes the SAD is bound to, in the order they were authorised. */
  readonly boundTo: readonly Buffer[];
  readonly #sad: string;
  readonly #key: string;

  constructor(
    sad: string,
    readonly expiresAt: number,
    boundTo: readonly Buffer[],
    /** `credential-token`: a credential-scope OAuth2 token standing in for the SAD (sent as the Bearer). */
    readonly kind: 'sad' | 'credential-token' = 'sad',
  ) {
    this.#sad = sad;
    this.boundTo = Object.freeze(boundTo.map((h) => Buffer.from(h)));
    this.#key = multisetKey(this.boundTo);
  }

  get count(): number {
    return this.boundTo.length;
  }

  /** True when `hashes` are exactly the bound hashes, as a multiset (order does not matter). */
  covers(hashes: readonly Buffer[]): boolean {
    return hashes.length === this.boundTo.length && multisetKey(hashes) === this.#key;
  }

  /** The SAD, for exactly the bound hashes only; anything else is refused before any request. */
  sadFor(hashes: readonly Buffer[], credentialId: string): string {
    if (!this.covers(hashes)) {
      throw new CscError({
        endpoint: SIGN_HASH,
        retryable: false,
        detail: `credential ${credentialId}: SCAL2 SAD is bound to ${this.boundTo.length} other hashes than the ${hashes.length} being sent`,
      });
    }
    return this.#sad;
  }

  toJSON(): Record<string, unknown> {
    return { scal: 2, kind: this.kind, expiresAt: this.expiresAt, count: this.count };
  }
}

/** A SCAL1 SAD may sign any hashes; a SCAL2 SAD only the ones it was bound to. */
export type SadReservation = Scal1Reservation | Scal2Reservation;

function multisetKey(hashes: readonly Buffer[]): string {
  return hashes
    .map((h) => h.toString('hex'))
    .sort()
    .join(',');
}

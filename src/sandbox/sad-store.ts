// Signature Activation Data: opaque random strings bound to a credential, the OAuth client that asked,
// a count of signatures left, an expiry and, when hashes were given at authorisation (always under
// SCAL2), the multiset of hashes they may sign. `spend` checks everything before it consumes anything.
import { randomBytes } from 'node:crypto';
import { cscErrors } from './csc-errors';
import { countHashes, spendQuota } from './signature-quota';

// Spent and expired SADs are remembered this long so callers get a precise refusal, then forgotten.
const TOMBSTONE_MS = 3600_000;

interface SadGrant {
  credentialId: string;
  clientId: string;
  total: number;
  remaining: number;
  expiresAt: number;
  /** hex digest -> how many signatures of it are still authorised; undefined = not hash-bound. */
  boundHashes?: Map<string, number>;
  /** Fault injection: refused as expired from this time on, though `expiresIn` said later. */
  earlyExpiresAt?: number;
  /** Fault injection: signHash calls it still serves before it is refused as expired. */
  usesLeft?: number;
}

/** A SAD's real end when a fault cuts it short; the answer still advertises the full lifetime. */
export interface EarlyExpiry {
  afterMs?: number;
  afterUses?: number;
}

export interface SadRequest {
  credentialId: string;
  clientId: string;
  numSignatures: number;
  hashes?: Buffer[];
}

export class SadStore {
  /** issued values, kept (bounded) after they lapse so tests can check none leaked */
  private readonly issued: string[] = [];
  private readonly sads = new Map<string, SadGrant>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
    /** Told when a SAD is refused because of an EarlyExpiry (fault counting). */
    private readonly onEarlyExpiry: () => void = () => {},
  ) {}

  issuedValues(): string[] {
    return [...this.issued];
  }

  private remember(value: string): void {
    this.issued.push(value);
    if (this.issued.length > 10_000) this.issued.shift();
  }

  issue(req: SadRequest, early?: EarlyExpiry): { sad: string; expiresInSec: number } {
    this.sweep();
    const boundHashes = countHashes(req.hashes);
    const sad = randomBytes(32).toString('base64url');
    this.remember(sad);
    const now = this.now();
    this.sads.set(sad, {
      credentialId: req.credentialId,
      clientId: req.clientId,
      total: req.numSignatures,
      remaining: req.numSignatures,
      expiresAt: now + this.lifetimeMs,
      boundHashes,
      ...(early?.afterMs === undefined ? {} : { earlyExpiresAt: now + early.afterMs }),
      ...(early?.afterUses === undefined ? {} : { usesLeft: early.afterUses }),
    });
    return { sad, expiresInSec: Math.max(1, Math.ceil(this.lifetimeMs / 1000)) };
  }

  /** Authorises signing `hashes` with `sad` and spends them, or throws without spending anything. */
  spend(sad: string, use: { credentialId: string; clientId: string; hashes: Buffer[] }): void {
    const grant = this.sads.get(sad);
    if (grant === undefined || grant.clientId !== use.clientId) throw cscErrors.invalidParam('SAD');
    if (grant.credentialId !== use.credentialId) {
      throw cscErrors.invalidParam('SAD', 'it was not issued for this credentialID');
    }
    if (this.now() >= grant.expiresAt) throw cscErrors.sadExpired();
    if (grant.remaining === 0) {
      throw cscErrors.invalidParam('SAD', `all ${grant.total} authorised signatures have been used`);
    }
    const earlyEnd = grant.earlyExpiresAt !== undefined && this.now() >= grant.earlyExpiresAt;
    if (earlyEnd || grant.usesLeft === 0) {
      this.onEarlyExpiry();
      throw cscErrors.sadExpired();
    }
    spendQuota(grant, use.hashes, 'the SAD');
    if (grant.usesLeft !== undefined) grant.usesLeft -= 1;
  }

  private sweep(): void {
    const forgetBefore = this.now() - TOMBSTONE_MS;
    for (const [sad, grant] of this.sads) if (grant.expiresAt < forgetBefore) this.sads.delete(sad);
  }
}

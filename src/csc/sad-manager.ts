// The SAD manager: holds the Signature Activation Data of one credential and hands out signatures
// from it. Under SCAL1 one multi-signature SAD serves many batches until its count or lifetime runs
// out; under SCAL2 every batch gets a SAD bound to exactly its hashes. Key factors are read only while
// authorising and never kept.
//
// TOTP replay (RFC 6238 section 5.2: a verifier accepts an OTP only once): the manager never sends a
// code of a time step it already used for this credential; it waits for the next step instead. Under
// SCAL2, where every batch needs its own authorisation, this caps authorisations at one per TOTP period
// (30 s by default) per credential, and batches queue behind it: accepted, since providers bill and
// throttle per signature and a SCAL2 night is bounded by that anyway. For the same reason a
// credentials/authorize is never re-sent as it was (see CscClient.authorize): the retries for 429/503, a
// refused service token and one refused OTP happen here, each with a fresh code.
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { Logger } from '../common/logger';
import type { CredentialFacts } from './credential-facts';
import type { CscClient } from './csc-client';
import { CscError, isServiceTokenRefusal } from './csc-error';
import { backoffFor } from './http';
import { Scal1Reservation, Scal2Reservation, type SadReservation } from './sad-reservation';
import { totpCode, totpSettingsProblem, totpTimeStep, type TotpAlgorithm } from './totp';

export interface KeyFactors {
  pin?: string;
  /** Base32 TOTP secret; the code is computed at authorisation time. */
  totpSecret?: string;
  /** Digits of the code; default 6. */
  totpDigits?: number;
  /** TOTP time step in seconds; default 30. */
  totpPeriod?: number;
  /** TOTP HMAC algorithm; default SHA1. */
  totpAlgorithm?: TotpAlgorithm;
}

export interface SadManagerOptions {
  client: CscClient;
  credential: CredentialFacts;
  /** Read only when authorising; the values are not kept. */
  factors: () => Promise<KeyFactors>;
  /** Signatures asked for per SCAL1 authorisation; default and ceiling: credential.multisign. */
  maxSignaturesPerAuthorisation?: number;
  /** A SAD this close to expiry is not handed out again; default 60000. */
  expiryMarginMs?: number;
  logger?: Logger;
}

export { Scal1Reservation, Scal2Reservation, type SadReservation };

interface CurrentSad {
  sad: string;
  expiresAt: number;
  remaining: number;
}

const AUTHORIZE = 'credentials/authorize';

export class SadManager {
  readonly credential: CredentialFacts;
  /** Most signatures one authorisation is asked for (and so the largest batch reserve() accepts). */
  readonly maxPerAuthorisation: number;
  private readonly client: CscClient;
  private readonly factors: () => Promise<KeyFactors>;
  private readonly marginMs: number;
  private readonly logger: Logger;
  private current?: CurrentSad;
  /** The one authorisation in flight; others wait for it rather than starting their own. */
  private authorising?: Promise<unknown>;
  private count = 0;
  /** A refusal of our factors (wrong PIN/OTP): sending them again would only lock the key. */
  private refusal?: CscError;

  constructor(o: SadManagerOptions) {
    this.client = o.client;
    this.credential = o.credential;
    this.factors = o.factors;
    this.marginMs = o.expiryMarginMs ?? 60_000;
    this.logger = o.logger ?? pino({ level: 'silent' });
    const max = o.maxSignaturesPerAuthorisation ?? o.credential.multisign;
    if (!Number.isInteger(max) || max < 1) {
      throw new CscError({
        endpoint: AUTHORIZE,
        retryable: false,
        detail: `maxSignaturesPerAuthorisation ${max} is not a count`,
      });
    }
    this.maxPerAuthorisation = Math.min(max, o.credential.multisign);
  }

  /** Authorisations made so far. */
  get authorisations(): number {
    return this.count;
  }

  /** Signatures left on the current SCAL1 SAD (0 when there is none or it is too close to expiry). */
  unusedSignatures(): number {
    return this.current && this.usable(this.current) ? this.current.remaining : 0;
  }

  /** Reserve hashes.length signatures and get the SAD to send them with. */
  async reserve(hashes: Buffer[]): Promise<SadReservation> {
    const n = hashes.length;
    const id = this.credential.credentialId;
    if (n < 1) {
      throw new CscError({
        endpoint: AUTHORIZE,
        retryable: false,
        detail: `credential ${id}: nothing to reserve`,
      });
    }
    if (n > this.maxPerAuthorisation) {
      throw new CscError({
        endpoint: AUTHORIZE,
        retryable: false,
        detail: `credential ${id}: a batch of ${n} exceeds the ${this.maxPerAuthorisation} signatures one authorisation may cover`,
      });
    }
    this.throwIfRefused();
    if (this.credential.scal === 2) {
      const bound = [...hashes];
      const { sad, expiresAt } = await this.serialised(() => this.authorise(n, bound));
      return { scal: 2, sad, expiresAt, boundTo: bound };
    }
    for (;;) {
      this.throwIfRefused();
      const cur = this.current;
      if (cur && cur.remaining >= n && this.usable(cur)) {
        cur.remaining -= n;
        return { scal: 1, sad: cur.sad, expiresAt: cur.expiresAt };
      }
      // Too few left for this batch (one signHash carries one SAD): the rest are abandoned.
      if (this.authorising) {
        // Someone is already authorising: wait and look again rather than drawing a second SAD.
        await this.authorising.catch(() => undefined);
        continue;
      }
      const fresh = await this.serialised(async () => {
        const got = await this.authorise(this.maxPerAuthorisation);
        const next = { ...got, remaining: this.maxPerAuthorisation - n };
        this.current = next;
        return next;
      });
      // A just-issued SAD is handed out even when its whole life is shorter than the margin.
      return { scal: 1, sad: fresh.sad, expiresAt: fresh.expiresAt };
    }
  }

  /** Stop handing out `sad` (the provider refused it, or a batch failed under it). */
  invalidate(sad: string): void {
    if (this.current?.sad === sad) this.current = undefined;
  }

  private throwIfRefused(): void {
    const r = this.refusal;
    if (!r) return;
    const said = `HTTP ${r.status}${r.error ? ` ${r.error}` : ''}${r.errorDescription ? `: ${r.errorDescription}` : ''}`;
    throw new CscError({
      endpoint: AUTHORIZE,
      status: r.status,
      error: r.error,
      errorDescription: r.errorDescription,
      retryable: false,
      detail: `credential ${this.credential.credentialId}: refused earlier with ${said}; not sending the factors again, so as not to lock the key`,
      cause: r,
    });
  }

  private usable(cur: CurrentSad): boolean {
    return Date.now() < cur.expiresAt - this.marginMs;
  }

  private async serialised<T>(work: () => Promise<T>): Promise<T> {
    while (this.authorising) await this.authorising.catch(() => undefined);
    const p = work();
    this.authorising = p;
    try {
      return await p;
    } finally {
      if (this.authorising === p) this.authorising = undefined;
    }
  }

  private async authorise(
    numSignatures: number,
    hashes?: Buffer[],
  ): Promise<{ sad: string; expiresAt: number }> {
    const c = this.credential;
    if (c.authMode !== 'explicit') {
      throw new CscError({
        endpoint: AUTHORIZE,
        retryable: false,
        detail: `credential ${c.credentialId}: auth mode ${c.authMode} cannot be authorised with stored factors`,
      });
    }
    const f = await this.factors();
    const pin = c.factors.includes('PIN') ? f.pin : undefined;
    let otp: string | undefined;
    if (c.factors.includes('OTP') && f.totpSecret !== undefined) {
      if (c.otpGenerator === 'other') {
        throw new CscError({
          endpoint: AUTHORIZE,
          retryable: false,
          detail: `credential ${c.credentialId}: its OTP is not a TOTP the application can compute`,
        });
      }
      otp = totpCode(f.totpSecret, { digits: f.totpDigits, period: f.totpPeriod });
    }
    const eitherWillDo = /\b(X?OR)\b/i.test(c.authExpression ?? '');
    const missing = c.factors.filter((x) => (x === 'PIN' ? pin === undefined : otp === undefined));
    if (missing.length > 0 && !(eitherWillDo && missing.length < c.factors.length)) {
      throw new CscError({
        endpoint: AUTHORIZE,
        retryable: false,
        detail: `credential ${c.credentialId}: needs ${missing.join(' and ')} but none is configured`,
      });
    }
    const started = Date.now();
    let got: { sad: string; expiresAt: number };
    try {
      got = await this.client.authorize({ credentialId: c.credentialId, numSignatures, pin, otp, hashes });
    } catch (err) {
      if (err instanceof CscError && isRefusal(err)) this.refusal = err;
      throw err;
    }
    this.count++;
    if (got.expiresAt - started <= this.marginMs && c.scal === 1) {
      this.logger.warn(
        { credentialId: c.credentialId, lifetimeMs: got.expiresAt - started, marginMs: this.marginMs },
        'SAD lifetime is within the expiry margin: every batch will re-authorise',
      );
    }
    this.logger.debug(
      { credentialId: c.credentialId, numSignatures, scal: c.scal },
      'CSC credential authorised',
    );
    return got;
  }
}

/** 4xx other than rate limiting and timeouts: the provider looked at our request and said no. */
function isRefusal(err: CscError): boolean {
  return (
    err.status !== undefined &&
    err.status >= 400 &&
    err.status < 500 &&
    err.status !== 429 &&
    err.status !== 408
  );
}

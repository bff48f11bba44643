// The SAD manager: holds the Signature Activation Data of one credential and hands out signatures
// from it. Under SCAL1 one multi-signature SAD serves many batches until its count or lifetime runs
// out; under SCAL2 every batch gets a SAD bound to exactly its hashes. Key factors are read only while
// authorising and never kept.
//
// Several worker processes may share a credential, so what must hold across them goes through an
// AuthorisationGuard (Redis in src/custody, in memory by default): one authorisation at a time per
// credential (a lease), a TOTP time step never sent twice (RFC 6238 section 5.2: a verifier accepts a
// step once; a step is claimed before its code is sent, and a taken step means waiting for the next),
// and a latch that stops every process once the provider refused our factors (sending them again would
// only lock the key) until new factors, a new approval or ops clear it.
//
// So a credential is authorised at most once per TOTP period (30 s by default): under SCAL1 a night
// seals at most multisign signatures per step. To reach that ceiling the next SAD is authorised ahead
// (authoriseAhead), on the next step, while the current one still has signatures, and a batch larger
// than what a SAD has left takes its last signatures (reserve with upTo) instead of abandoning them.
// Under SCAL2, where every batch needs its own authorisation, it means one batch per period per
// credential. credentials/authorize is never
// re-sent as it was (see CscClient.authorize): the retries after a 429/503, a refused service token and
// a refused OTP happen here, each with the code of a new step.
import type { SealingObserver } from '../common/sealing-events';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { Logger } from '../common/logger';
import type { CredentialFacts } from './credential-facts';
import type { CscClient } from './csc-client';
import { CscError, isServiceTokenRefusal } from './csc-error';
import { secretFingerprint } from '../common/fingerprint';
import {
  InMemoryAuthorisationGuard,
  type AuthorisationGuard,
  type CredentialLatch,
  type InHandElsewhere,
} from './authorisation-guard';
import type { ApprovalSource } from './approval-source';
import { Scal1Reservation, Scal2Reservation, type SadReservation } from './sad-reservation';
import { isOtpReplayRefusal, totpCode, totpSettingsProblem, totpTimeStep, type TotpAlgorithm } from './totp';

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
  /** Read only when authorising; the values are not kept. Unused with `approvals`. */
  factors: () => Promise<KeyFactors>;
  /**
   * The tenant keeps its factors and approves quotas: every SAD comes from this source and the manager
   * never calls credentials/authorize itself. A reservation may then cover fewer hashes than asked.
   */
  approvals?: ApprovalSource;
  /** Told of authorisations and of signatures given up, for metrics and run records. */
  observe?: SealingObserver;
  /** names the tenant in what `observe` is told */
  tenant?: string;
  /** Told of every authorisation made (for the audit trail); `sad` is for fingerprinting only. */
  onAuthorised?: (a: { numSignatures: number; expiresAt: number; sad: string; scal: 1 | 2 }) => void;
  /** Signatures asked for per SCAL1 authorisation at most; default and ceiling: credential.multisign. */
  maxSignaturesPerAuthorisation?: number;
  /**
   * Signatures still wanted from this credential (e.g. the invoices queued for it, the batch in hand
   * included). A SCAL1 authorisation asks for that many, at least the batch in hand and at most
   * maxSignaturesPerAuthorisation, since providers may bill what is authorised. Default: always the most.
   */
  demand?: () => Promise<number>;
  /**
   * Authorise the next SCAL1 SAD ahead, on the next TOTP step, while the current one still has
   * signatures, so that a night is limited by one authorisation per step rather than idling for one
   * whenever a SAD runs out. Needs `demand` (nothing is authorised ahead without one). `margin` is how
   * many invoices the demand may count that this process already holds signatures for (signed, being
   * finished or delivered): a count, or a function asked each time (the worker's invoices past
   * signing). Default: off.
   */
  authoriseAhead?: { margin: number | (() => number) };
  /**
   * Coordinates authorisations with the other processes of this credential (lease, TOTP steps, latch).
   * Default: an in-memory guard, which is right for a single process only.
   */
  guard?: AuthorisationGuard;
  /** Random numbers in [0, 1) for the jitter of busy waits; default Math.random. Tests fix it. */
  random?: () => number;
  /** A SAD this close to expiry is not handed out again; default 60000. */
  expiryMarginMs?: number;
  logger?: Logger;
  /**
   * Time for TOTP steps and for waits between authorisation attempts; default the real clock. Tests
   * pass one they move forward instead of sleeping (SAD expiry always follows the real clock).
   */
  clock?: SadClock;
}

export interface SadClock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Resolves after `ms`, or at once (never rejecting) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const REAL_CLOCK: SadClock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await sleep(ms, undefined, signal && { signal }).catch(() => undefined);
  },
};

interface Authorised {
  sad: string;
  expiresAt: number;
  numSignatures: number;
}

interface CurrentSad {
  sad: string;
  expiresAt: number;
  remaining: number;
  /** When it was authorised (clock time) and how many it was authorised for: its rate of use. */
  since: number;
  size: number;
}

/** How often at most the demand is read to decide on authorising ahead. */
const AHEAD_CHECK_MS = 1000;
/** How often (real ms) at most this process tells the others how many signatures it holds. */
const IN_HAND_TELL_MS = 5000;
/** Authorise ahead once the current SAD would run out within this many TOTP steps at its rate of use. */
const AHEAD_STEPS = 2;

const AUTHORIZE = 'credentials/authorize';

export class SadManager {
  readonly credential: CredentialFacts;
  /** Most signatures one authorisation is asked for (and so the largest batch reserve() accepts). */
  readonly maxPerAuthorisation: number;
  private readonly client: CscClient;
  private readonly factors: () => Promise<KeyFactors>;
  private readonly marginMs: number;
  private readonly logger: Logger;
  private readonly clock: SadClock;
  private readonly approvals?: ApprovalSource;
  private readonly onAuthorised?: SadManagerOptions['onAuthorised'];
  private readonly observe?: SealingObserver;
  private readonly tenant: string;
  private readonly guard: AuthorisationGuard;
  private readonly demand?: () => Promise<number>;
  private readonly random: () => number;
  private current?: CurrentSad;
  /** A SAD authorised ahead, handed out once the current one is spent. */
  private next?: CurrentSad;
  private readonly ahead?: { margin: number | (() => number) };

  /** The margin now (see authoriseAhead); a function that answers no count counts as 0. */
  private marginNow(): number {
    const m = this.ahead?.margin ?? 0;
    const n = typeof m === 'function' ? m() : m;
    return Number.isInteger(n) && n > 0 ? n : 0;
  }
  /** This credential's SADs live no longer than the expiry margin: every batch authorises its own. */
  private outlivedByMargin = false;
  /** The authorisation ahead under way (waiting for its step, or sent). */
  private aheadTask?: Promise<void>;
  private aheadCheckedAt = -Infinity;
  private inHandToldAt = -Infinity;
  /** TOTP period (s) of the last authorisation; undefined: no OTP, so no step to wait for. */
  private period?: number;
  private closed = false;
  /** Cuts short the waits of an authorisation ahead once the signer closes. */
  private readonly closedAbort = new AbortController();
  /** The one authorisation in flight; others wait for it rather than starting their own. */
  private authorising?: Promise<unknown>;
  private count = 0;
  /** Signatures left on SADs replaced before they were spent. */
  private abandoned = 0;
  /** First TOTP step this process may try to claim: the ones before it are known to be used. */
  private nextStep = -Infinity;

  constructor(o: SadManagerOptions) {
    this.client = o.client;
    this.credential = o.credential;
    this.factors = o.factors;
    this.marginMs = o.expiryMarginMs ?? 60_000;
    this.logger = o.logger ?? pino({ level: 'silent' });
    this.clock = o.clock ?? REAL_CLOCK;
    this.approvals = o.approvals;
    this.onAuthorised = o.onAuthorised;
    this.observe = o.observe;
    this.tenant = o.tenant ?? '';
    this.guard = o.guard ?? new InMemoryAuthorisationGuard();
    this.demand = o.demand;
    this.random = o.random ?? Math.random;
    if (o.authoriseAhead) {
      const m = o.authoriseAhead.margin;
      if (typeof m !== 'function' && (!Number.isInteger(m) || m < 0)) {
        throw new CscError({
          endpoint: AUTHORIZE,
          retryable: false,
          detail: `authoriseAhead margin ${m} is not a count`,
        });
      }
      this.ahead = { margin: m };
    }
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

  /** True when SADs come from a tenant's approval rather than from credentials/authorize. */
  get approvalBased(): boolean {
    return this.approvals !== undefined;
  }

  /** Authorisations made so far (by this manager; approvals are counted where they were granted). */
  get authorisations(): number {
    return this.count;
  }

  /** Signatures left on the current SCAL1 SAD (0 when there is none or it is too close to expiry). */
  unusedSignatures(): number {
    // Left on the current SAD (usable or not: the provider bills them either way) and on SADs given up
    // because a batch needed more than they had left.
    return (this.current?.remaining ?? 0) + (this.next?.remaining ?? 0) + this.abandoned;
  }

  /**
   * Reserve hashes.length signatures and get the SAD to send them with; `runs` are the runs whose
   * invoices the hashes are, named in the authorisation an empty reservation makes. With `upTo`, a
   * SCAL1 reservation may cover fewer (a prefix of the batch: what the current SAD has left), so a SAD
   * is spent to its last signature and the caller reserves again for the rest.
   */
  async reserve(hashes: Buffer[], runs: string[] = [], o: { upTo?: boolean } = {}): Promise<SadReservation> {
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
    if (this.approvals) {
      if (this.credential.scal === 2) {
        // Only hashes the approver approved; the others wait (ApprovalNeededError from the source).
        const drawn = await this.approvals.drawBound(hashes, this.marginMs);
        return new Scal2Reservation(drawn.value, drawn.expiresAt, drawn.hashes ?? [], drawn.kind);
      }
      // The draw takes 1..n signatures, or throws ApprovalNeededError.
      const drawn = await this.approvals.draw(n, this.marginMs);
      return new Scal1Reservation(drawn.value, drawn.expiresAt, drawn.count, drawn.kind);
    }
    if (this.credential.scal === 2) {
      const bound = [...hashes];
      const { sad, expiresAt } = (await this.serialised(() =>
        this.authorise(() => Promise.resolve(n), bound, runs),
      ))!;
      return new Scal2Reservation(sad, expiresAt, bound);
    }
    const least = o.upTo ? 1 : n;
    for (;;) {
      this.promote(least);
      const cur = this.current;
      if (cur && cur.remaining >= least && this.usable(cur)) {
        const take = Math.min(n, cur.remaining);
        cur.remaining -= take;
        this.considerAhead(runs);
        return new Scal1Reservation(cur.sad, cur.expiresAt, take);
      }
      if (this.authorising) {
        // Someone is already authorising (maybe ahead): wait and look again rather than drawing a second SAD.
        await this.authorising.catch(() => undefined);
        continue;
      }
      const fresh = await this.serialised(async () => {
        // Sized while holding the lease: a process authorising just before us has told what it holds.
        const got = (await this.authorise(() => this.sized(n), undefined, runs))!;
        const numSignatures = got.numSignatures;
        // Too few were left on the one replaced for this batch (one signHash carries one SAD).
        this.giveUp(this.current?.remaining ?? 0);
        // The rate of use is measured from after this first batch: it says nothing about the rate.
        const remaining = numSignatures - n;
        this.current = { ...got, remaining, since: this.clock.now(), size: remaining };
        this.aheadCheckedAt = -Infinity;
        return this.current;
      });
      this.considerAhead(runs);
      // A just-issued SAD is handed out even when its whole life is shorter than the margin.
      return new Scal1Reservation(fresh.sad, fresh.expiresAt, n);
    }
  }

  /** Hands out the SAD authorised ahead once the current one cannot serve `least` more signatures. */
  private promote(least: number): void {
    const cur = this.current;
    const next = this.next;
    if (next && !this.usable(next)) {
      // Expired while it waited: given up, so that another can be authorised ahead.
      this.giveUp(next.remaining);
      this.next = undefined;
      return;
    }
    if (!next || (cur && cur.remaining >= least && this.usable(cur))) return;
    // A next SAD too small for this batch would be given up as well: it waits for the next one.
    if (next.remaining < least) return;
    this.giveUp(cur?.remaining ?? 0);
    // Its rate of use runs from now, not from when it was authorised.
    this.current = { ...next, since: this.clock.now(), size: next.remaining };
    this.next = undefined;
    this.aheadCheckedAt = -Infinity; // a new SAD in hand: time to look ahead again
  }

  /** Starts authorising the next SAD ahead when this manager does that and none is under way; `runs`
   * are the runs of the batch that was served, named in the authorisation. */
  private considerAhead(runs: string[]): void {
    // A SAD that does not outlive the expiry margin is unusable as soon as it is issued: one authorised
    // ahead would only be given up unused.
    if (!this.ahead || !this.demand || this.closed || this.outlivedByMargin) return;
    this.tellInHand();
    if (this.aheadTask || this.next) return;
    const now = this.clock.now();
    if (now - this.aheadCheckedAt < AHEAD_CHECK_MS) return;
    const cur = this.current;
    if (cur && !this.runsOutSoon(cur, now)) return;
    this.aheadCheckedAt = now;
    this.aheadTask = this.authoriseNextAhead(runs)
      .catch((err: unknown) => {
        // Only an economy: the batch that needs a SAD authorises one itself and meets the error there.
        this.logger.warn(
          { credentialId: this.credential.credentialId, err: (err as Error).message },
          'authorising the next SAD ahead failed; the next batch that needs one will authorise it',
        );
      })
      .finally(() => {
        this.aheadTask = undefined;
      });
  }

  /** Keeps this process's count of signatures in hand fresh for the others (see wantedAhead). */
  private tellInHand(): void {
    const now = Date.now();
    if (now - this.inHandToldAt < IN_HAND_TELL_MS) return;
    this.inHandToldAt = now;
    const cur = this.current;
    const own = (cur && this.usable(cur) ? cur.remaining : 0) + (this.next?.remaining ?? 0);
    this.othersInHand(own + this.marginNow()).catch(() => undefined);
  }

  /** Whether `cur`, at the rate it has been used, runs out within AHEAD_STEPS TOTP steps (or seconds). */
  private runsOutSoon(cur: CurrentSad, now: number): boolean {
    const horizonMs = AHEAD_STEPS * (this.period ?? 1) * 1000;
    // A SAD whose life ends first is replaced as well (SAD expiry follows the real clock).
    if (cur.expiresAt - this.marginMs - Date.now() <= horizonMs) return true;
    const used = cur.size - cur.remaining;
    const elapsed = now - cur.since;
    if (used <= 0) return false;
    if (elapsed <= 0) return true;
    const msLeft = (cur.remaining / used) * elapsed;
    return msLeft <= horizonMs;
  }

  /** Signatures still wanted beyond those in hand (the current SAD, plus the margin); may be <= 0. */
  private async wantedAhead(): Promise<number> {
    let demand: number;
    try {
      demand = await this.demand!();
    } catch {
      return 0;
    }
    if (!Number.isFinite(demand)) return 0;
    const cur = this.current;
    const inHand = (cur && this.usable(cur) ? cur.remaining : 0) + (this.next?.remaining ?? 0);
    // The demand is every process's: what the others hold, and the invoices they have in hand, are not
    // wanted again here.
    const margin = this.marginNow();
    const others = await this.othersInHand(inHand + margin);
    return Math.min(this.maxPerAuthorisation, Math.ceil(demand) - inHand - others.signatures - margin);
  }

  /** What the other processes of this credential hold (none when the guard cannot tell or fails). */
  private async othersInHand(own: number): Promise<InHandElsewhere> {
    const none = { signatures: 0, processes: 0 };
    if (!this.guard.shareInHand) return none;
    try {
      return await this.guard.shareInHand(own);
    } catch (err) {
      this.logger.warn(
        { credentialId: this.credential.credentialId, err: (err as Error).message },
        "cannot share the signatures in hand; counting this process's only",
      );
      return none;
    }
  }

  private async authoriseNextAhead(runs: string[]): Promise<void> {
    if ((await this.wantedAhead()) <= 0) return;
    // Wait for the step after the one last sent, outside the lease: until then it is nobody's turn.
    if (this.period !== undefined && Number.isFinite(this.nextStep)) {
      const waitMs = this.nextStep * this.period * 1000 - this.clock.now();
      if (waitMs > 0) await this.clock.sleep(waitMs, this.closedAbort.signal);
    }
    if (this.closed) return;
    await this.serialised(async () => {
      if (this.closed || this.next) return;
      let got: Authorised | undefined;
      try {
        // Looked at again holding the lease: a batch, or another process, may have authorised
        // meanwhile, or the night may be nearly done.
        got = await this.authorise(
          async () => (this.closed || this.next ? 0 : this.wantedAhead()),
          undefined,
          runs,
          this.closedAbort.signal,
        );
      } catch (err) {
        if (err instanceof StoppedBeforeSending) return; // closed before anything was sent
        throw err;
      }
      if (!got) return;
      const wanted = got.numSignatures;
      const held: CurrentSad = { ...got, remaining: wanted, since: this.clock.now(), size: wanted };
      if (this.closed) {
        this.giveUp(wanted);
        return;
      }
      this.logger.debug(
        { credentialId: this.credential.credentialId, numSignatures: wanted },
        'next SAD authorised ahead',
      );
      this.next = held;
    });
  }

  /** Signatures left on a SAD that will not be used (replaced, or the signer closing). */
  private giveUp(count: number): void {
    if (count <= 0) return;
    this.abandoned += count;
    this.observe?.({
      type: 'signaturesUnused',
      tenant: this.tenant,
      credentialId: this.credential.credentialId,
      count,
    });
  }

  /** The signer is closing: what is left on the current SAD and on one authorised ahead is reported as
   * unused (and still counted by unusedSignatures()); nothing more is authorised ahead. */
  releaseUnused(): void {
    this.closed = true;
    this.closedAbort.abort();
    if (this.ahead) this.othersInHand(0).catch(() => undefined); // the others stop counting ours
    for (const held of [this.current, this.next]) {
      const left = held?.remaining ?? 0;
      if (left <= 0 || !held) continue;
      held.remaining = 0;
      this.giveUp(left);
    }
  }

  /** Resolves once no authorisation ahead is under way: after releaseUnused one still waiting for its
   * step or the lease ends without sending; one already sent is awaited (its SAD counted unused). */
  async aheadSettled(): Promise<void> {
    await this.aheadTask;
  }

  /** An approval-based SAD or token the provider refused: no worker process hands it out again. */
  async retireApproval(value: string): Promise<void> {
    await this.approvals?.retire(secretFingerprint(value));
  }

  /** Stop handing out the reservation's SAD (the provider refused it, or a batch failed under it). */
  invalidate(what: SadReservation | string): void {
    // A SCAL2 SAD is never handed out twice, so there is nothing to forget.
    const sad = typeof what === 'string' ? what : what.scal === 1 ? what.sad : undefined;
    if (sad !== undefined && this.current?.sad === sad) this.current = undefined;
    if (sad !== undefined && this.next?.sad === sad) this.next = undefined;
  }

  /** Refuses to authorise while any process has latched this credential (the provider refused our factors). */
  private async throwIfLatched(): Promise<void> {
    const latch = await this.guard.latched();
    if (!latch) return;
    throw new CscError({
      endpoint: AUTHORIZE,
      status: latch.status,
      error: latch.error,
      errorDescription: latch.errorDescription,
      kind: 'refused',
      detail: `credential ${this.credential.credentialId}: refused earlier with ${latch.reason} (at ${new Date(latch.at).toISOString()}); not sending the factors again, so as not to lock the key, until new factors, a new approval or a retry by ops`,
    });
  }

  /**
   * Signatures to ask for: the demand less what the other processes of the credential hold, at least
   * the batch in hand, at most one authorisation's worth. Each process reads the whole night's demand:
   * without subtracting, two processes starting together would each authorise all of it and leave
   * one of them unused.
   *
   * Even where the others already cover the demand this process takes at least an equal share: one
   * authorisation per TOTP step is all a credential gets, so a process holding only its batch would
   * seal a batch per step while its invoices in hand wait (measured with two workers on 5,000 invoices:
   * 47/s instead of hundreds). What it seals is left unused on the others' SADs, so a night that
   * starts with several processes leaves at most (P-1)/P of its first authorisation unused, not all of
   * it for each. Sharing one SAD between processes would leave nothing; SADs stay in one process.
   */
  private async sized(batch: number): Promise<number> {
    if (!this.demand) return this.maxPerAuthorisation;
    let wanted: number;
    try {
      wanted = await this.demand();
    } catch (err) {
      // Sizing is an economy, not a condition of sealing: without a count, ask for the most.
      this.logger.warn(
        { credentialId: this.credential.credentialId, err: (err as Error).message },
        'demand unknown; authorising the most signatures allowed',
      );
      return this.maxPerAuthorisation;
    }
    if (!Number.isFinite(wanted)) return this.maxPerAuthorisation;
    const others = await this.othersInHand(this.heldNow() + this.marginNow());
    const rest = Math.ceil(wanted) - others.signatures;
    const share = Math.ceil(wanted / (others.processes + 1));
    return Math.min(this.maxPerAuthorisation, Math.max(batch, rest, share));
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

  /** Signatures this process holds on usable SADs (the current one and one authorised ahead). */
  private heldNow(): number {
    const cur = this.current;
    return (cur && this.usable(cur) ? cur.remaining : 0) + (this.next?.remaining ?? 0);
  }

  /**
   * Authorises `size()` signatures, sized while holding the lease (undefined, and nothing sent, when it
   * is <= 0). `stop`: give up (StoppedBeforeSending) at any point before the request leaves.
   */
  private async authorise(
    size: () => Promise<number>,
    hashes: Buffer[] | undefined,
    runs: string[],
    stop?: AbortSignal,
  ): Promise<Authorised | undefined> {
    // Checked before queueing for the lease (fail fast) and again once holding it: the holder before
    // us may have latched the credential while we waited.
    await this.throwIfLatched();
    const got = await this.guard.withLease(async (): Promise<Authorised | undefined> => {
      await this.throwIfLatched();
      const n = await size();
      if (n <= 0) return undefined;
      const sad = await this.authoriseHoldingLease(n, hashes, stop);
      // Told before the lease is released, so the next process to size an authorisation counts it.
      if (this.credential.scal === 1) {
        await this.othersInHand(this.heldNow() + n + this.marginNow());
        this.inHandToldAt = Date.now();
      }
      return { ...sad, numSignatures: n };
    });
    if (!got) return undefined;
    const numSignatures = got.numSignatures;
    this.observe?.({
      type: 'authorize',
      tenant: this.tenant,
      credentialId: this.credential.credentialId,
      numSignatures,
      runs,
    });
    return got;
  }

  private async authoriseHoldingLease(
    numSignatures: number,
    hashes?: Buffer[],
    stop?: AbortSignal,
  ): Promise<{ sad: string; expiresAt: number }> {
    if (stop?.aborted) throw new StoppedBeforeSending();
    const c = this.credential;
    // An implicit credential is authorised by the service authentication alone: no factors are sent.
    const { pin, totpSecret, f } =
      c.authMode === 'implicit'
        ? { pin: undefined, totpSecret: undefined, f: {} }
        : await this.explicitFactors();
    // A code refused without saying it was used may be clock skew: one more try on a fresh step.
    let otpRetries = 1;
    // A code refused as already used is someone else's step (a client outside the lease): not our
    // factors, so never a latch; a few fresh steps, each of which the provider counts as a failure.
    let replayRetries = 2;
    let tokenRetries = 1;
    let busyAttempts = 0;
    for (;;) {
      const otp = totpSecret === undefined ? undefined : await this.freshOtp(totpSecret, f, stop);
      if (stop?.aborted) throw new StoppedBeforeSending();
      const started = Date.now();
      try {
        const got = await this.client.authorize({
          credentialId: c.credentialId,
          numSignatures,
          pin,
          otp,
          hashes,
        });
        this.count++;
        this.onAuthorised?.({ numSignatures, expiresAt: got.expiresAt, sad: got.sad, scal: c.scal });
        if (got.expiresAt - started <= this.marginMs && c.scal === 1) {
          this.outlivedByMargin = true;
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
      } catch (err) {
        if (!(err instanceof CscError)) throw err;
        const log = { credentialId: c.credentialId, status: err.status, error: err.error };
        if (otp !== undefined && isOtpReplayRefusal(err)) {
          if (replayRetries-- > 0) {
            this.logger.warn(log, 'CSC refused the OTP as already used; retrying on the next time step');
            continue;
          }
          throw new CscError({
            endpoint: AUTHORIZE,
            status: err.status,
            error: err.error,
            errorDescription: err.errorDescription,
            kind: 'transient',
            detail: `credential ${c.credentialId}: the provider refused the OTP of several time steps as already used; another client uses this credential's steps outside the authorisation lease`,
            cause: err,
          });
        }
        if (otp !== undefined && err.code === 'invalid_otp' && otpRetries-- > 0) {
          this.logger.warn(log, 'CSC refused the OTP; retrying once with the next time step');
          continue;
        }
        // The client has dropped the refused token; the next attempt fetches another.
        if (isServiceTokenRefusal(err) && tokenRetries-- > 0) {
          this.logger.info(log, 'CSC service token refused while authorising; retrying with a new one');
          continue;
        }
        const waitMs = this.busyWait(err, busyAttempts);
        if (waitMs !== undefined) {
          busyAttempts++;
          this.logger.warn(
            { ...log, waitMs, attempt: busyAttempts },
            'CSC provider asked to slow down; waiting',
          );
          await this.clock.sleep(waitMs);
          continue;
        }
        // The provider looked at the factors we sent and said no: stop every process of this credential.
        if ((pin !== undefined || otp !== undefined) && isRefusal(err)) await this.guard.latch(latchOf(err));
        throw err;
      }
    }
  }

  /**
   * Wait before re-sending after a 429/503, or undefined when giving up: at most `maxRetries` times,
   * never less than Retry-After, and never a Retry-After above `maxDelayMs` (the job retries later).
   * Without Retry-After, exponential from 250 ms with equal jitter (half fixed, half random), so the
   * processes that met the same answer do not come back in step.
   */
  private busyWait(err: CscError, attempt: number): number | undefined {
    const policy = this.client.retry;
    if ((err.status !== 429 && err.status !== 503) || attempt >= policy.maxRetries) return undefined;
    if (err.retryAfterMs !== undefined && err.retryAfterMs > policy.maxDelayMs) return undefined;
    const cap = Math.min(policy.maxDelayMs, 250 * 2 ** attempt);
    const jittered = Math.round(cap / 2 + this.random() * (cap / 2));
    return Math.max(err.retryAfterMs ?? 0, jittered);
  }

  private async explicitFactors(): Promise<{ pin?: string; totpSecret?: string; f: KeyFactors }> {
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
    const totpSecret = c.factors.includes('OTP') ? f.totpSecret : undefined;
    if (totpSecret !== undefined) {
      const problem =
        c.otpGenerator === 'other'
          ? 'its OTP is not a TOTP the application can compute'
          : totpSettingsProblem({ digits: f.totpDigits, period: f.totpPeriod, algorithm: f.totpAlgorithm });
      if (problem) {
        throw new CscError({
          endpoint: AUTHORIZE,
          retryable: false,
          detail: `credential ${c.credentialId}: ${problem}`,
        });
      }
    }
    const eitherWillDo = /\b(X?OR)\b/i.test(c.authExpression ?? '');
    const missing = c.factors.filter((x) => (x === 'PIN' ? pin === undefined : totpSecret === undefined));
    if (missing.length > 0 && !(eitherWillDo && missing.length < c.factors.length)) {
      throw new CscError({
        endpoint: AUTHORIZE,
        retryable: false,
        detail: `credential ${c.credentialId}: needs ${missing.join(' and ')} but none is configured`,
      });
    }
    return { pin, totpSecret, f };
  }

  /**
   * A TOTP code of a time step no process has sent for this credential, waiting for the next step when
   * the current one is taken. The step is claimed before the request leaves: even a failed request may
   * have spent it.
   */
  private async freshOtp(secret: string, f: KeyFactors, stop?: AbortSignal): Promise<string> {
    const period = f.totpPeriod ?? 30;
    for (;;) {
      const now = this.clock.now();
      const step = totpTimeStep(now, period);
      if (step >= this.nextStep) {
        const claim = await this.guard.claimStep(step, period);
        if (claim.claimed) {
          this.nextStep = step + 1;
          this.period = period;
          return totpCode(secret, { digits: f.totpDigits, period, algorithm: f.totpAlgorithm, now });
        }
        this.nextStep = claim.lastUsed + 1;
      }
      const waitMs = Math.max(1, this.nextStep * period * 1000 - now);
      this.logger.debug(
        { credentialId: this.credential.credentialId, waitMs },
        'TOTP code of this time step already used; waiting for the next step',
      );
      await this.clock.sleep(waitMs, stop);
      if (stop?.aborted) throw new StoppedBeforeSending();
    }
  }
}

/** An authorisation ahead given up before its request left (the signer closed). */
class StoppedBeforeSending extends Error {}

/**
 * 4xx other than rate limiting, timeouts and a refused service token: the provider looked at our
 * factors or request and said no.
 */
function isRefusal(err: CscError): boolean {
  return (
    err.status !== undefined &&
    err.status >= 400 &&
    err.status < 500 &&
    err.status !== 429 &&
    err.status !== 408 &&
    !isServiceTokenRefusal(err)
  );
}

/** The latch of a refusal: what the provider said, never what we sent. */
function latchOf(err: CscError): CredentialLatch {
  const said = `HTTP ${err.status}${err.error ? ` ${err.error}` : ''}${err.errorDescription ? `: ${err.errorDescription}` : ''}`;
  return {
    reason: said,
    status: err.status,
    error: err.error,
    errorDescription: err.errorDescription,
    at: Date.now(),
  };
}

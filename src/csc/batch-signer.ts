// The batch coordinator: gathers SHA-256 hashes of one credential from many concurrent jobs into
// signatures/signHash calls of up to batchSize hashes, under SADs from the SAD manager, with a few
// calls in flight. Each caller gets its own hash's signature; a failed batch fails only its callers.
// batchSize is a ceiling: a provider that refuses a call as carrying too many hashes gets it again in
// parts, and every later batch stays within the limit it stated (providers cap hashes per call).
import pino from 'pino';
import type { SealingObserver } from '../common/sealing-events';
import type { Logger } from '../common/logger';
import type { CredentialFacts } from './credential-facts';
import { CscBadReplyError, type CscClient } from './csc-client';
import { ApprovalNeededError } from './approval-needed';
import { CscError } from './csc-error';
import type { SadManager } from './sad-manager';
import { Scal1Reservation, Scal2Reservation, type SadReservation } from './sad-reservation';

export interface BatchSignerOptions {
  client: CscClient;
  credential: CredentialFacts;
  sadManager: SadManager;
  /** Hashes per signHash call; capped at what one authorisation may cover. */
  batchSize: number;
  /** Send a partial batch once no new hash has arrived for this long; default 50. */
  maxWaitMs?: number;
  /** ...and at the latest this long after its oldest hash arrived; default 500. */
  maxDelayMs?: number;
  /** signHash calls in flight at once; default 4. */
  maxInFlight?: number;
  logger?: Logger;
  /** names the tenant when an approval covers only part of a batch */
  tenant?: string;
  /** told of every signHash call, with how many of its hashes each run had */
  observe?: SealingObserver;
}

interface Waiting {
  hash: Buffer;
  /** the run whose invoice this hash is, for per-run counts */
  runId?: string;
  at: number;
  resolve: (sig: Buffer) => void;
  reject: (err: CscError | ApprovalNeededError) => void;
}

const SIGN_HASH = 'signatures/signHash';

export class BatchSigner {
  private readonly client: CscClient;
  private readonly credential: CredentialFacts;
  private readonly sadManager: SadManager;
  /** The job's batchSize, capped at what one authorisation covers: a ceiling, see sizeNow(). */
  private readonly batchSize: number;
  /** Hashes per call the provider accepts, once it refused more (lowest seen; never raised again). */
  private providerLimit?: number;
  private readonly maxWaitMs: number;
  private readonly maxDelayMs: number;
  private readonly maxInFlight: number;
  private readonly logger: Logger;
  private readonly tenant: string;
  private readonly observe?: SealingObserver;
  private pending: Waiting[] = [];
  private lastArrival = 0;
  private timer?: NodeJS.Timeout;
  private closing = false;
  private readonly running = new Set<Promise<void>>();
  private readonly counts = { batches: 0, signatures: 0, failedBatches: 0 };
  /** Hashes of batches waiting for their reservation (a SAD, an approval). */
  private reserving = 0;

  constructor(o: BatchSignerOptions) {
    this.client = o.client;
    this.credential = o.credential;
    this.sadManager = o.sadManager;
    this.maxWaitMs = o.maxWaitMs ?? 50;
    this.maxDelayMs = o.maxDelayMs ?? 500;
    this.maxInFlight = o.maxInFlight ?? 4;
    this.logger = o.logger ?? pino({ level: 'silent' });
    this.tenant = o.tenant ?? '';
    this.observe = o.observe;
    const id = o.credential.credentialId;
    const bad = (detail: string) =>
      new CscError({ endpoint: SIGN_HASH, retryable: false, detail: `credential ${id}: ${detail}` });
    if (o.sadManager.credential.credentialId !== id) {
      throw bad(`the SAD manager serves credential ${o.sadManager.credential.credentialId}`);
    }
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1)
      throw bad(`batchSize ${o.batchSize} is not a count`);
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1)
      throw bad(`maxInFlight ${this.maxInFlight} is not a count`);
    this.batchSize = Math.min(o.batchSize, o.sadManager.maxPerAuthorisation);
    if (this.batchSize < o.batchSize) {
      this.logger.warn(
        { credentialId: id, batchSize: o.batchSize, cap: this.batchSize },
        'batchSize is above what one authorisation covers; using the cap',
      );
    }
  }

  /** Sign one SHA-256 hash of run `runId`'s invoice; resolves with its signature (DER for ECDSA). */
  sign(hash: Buffer, runId?: string): Promise<Buffer> {
    const id = this.credential.credentialId;
    if (this.closing) {
      return Promise.reject(
        new CscError({
          endpoint: SIGN_HASH,
          retryable: true,
          detail: `credential ${id}: the batch signer is closed`,
        }),
      );
    }
    if (!Buffer.isBuffer(hash) || hash.length !== 32) {
      return Promise.reject(
        new CscError({
          endpoint: SIGN_HASH,
          retryable: false,
          detail: `credential ${id}: a hash to sign must be 32 bytes (SHA-256)`,
        }),
      );
    }
    return new Promise<Buffer>((resolve, reject) => {
      const at = Date.now();
      this.pending.push({ hash, runId, at, resolve, reject });
      this.lastArrival = at;
      this.pump();
    });
  }

  /** The seam the seal part knows (its RawSigner): signatures in the order of `hashes`, of run `runId`. */
  signRaw(hashes: Buffer[], runId?: string): Promise<Buffer[]> {
    return Promise.all(hashes.map((h) => this.sign(h, runId)));
  }

  /** Hashes handed to this signer that no reservation covers yet: queued, or waiting for a SAD. */
  load(): { unreserved: number } {
    return { unreserved: this.pending.length + this.reserving };
  }

  stats(): { batches: number; signatures: number; authorisations: number; failedBatches: number } {
    return { ...this.counts, authorisations: this.sadManager.authorisations };
  }

  /** Send whatever is pending, wait for every batch to settle, and refuse new hashes. */
  async close(): Promise<void> {
    this.closing = true;
    this.pump();
    while (this.pending.length > 0 || this.running.size > 0) {
      await Promise.allSettled([...this.running]);
      this.pump();
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.sadManager.releaseUnused();
    await this.sadManager.aheadSettled();
  }

  private deadline(): number {
    const oldest = this.pending[0];
    if (!oldest) return Infinity;
    return Math.min(this.lastArrival + this.maxWaitMs, oldest.at + this.maxDelayMs);
  }

  /** Hashes per signHash call now: batchSize, or the provider's stated limit once it is known. */
  private sizeNow(): number {
    return Math.min(this.batchSize, this.providerLimit ?? Infinity);
  }

  private pump(): void {
    while (this.running.size < this.maxInFlight && this.pending.length > 0) {
      const size = this.sizeNow();
      const due = this.pending.length >= size || this.closing || Date.now() >= this.deadline();
      if (!due) break;
      this.dispatch(this.pending.splice(0, size));
    }
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // With every slot busy, the next batch to finish pumps again.
    if (this.pending.length === 0 || this.running.size >= this.maxInFlight) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(0, this.deadline() - Date.now()),
    );
  }

  private dispatch(batch: Waiting[]): void {
    const run: Promise<void> = this.runBatch(batch).finally(() => {
      this.running.delete(run);
      this.pump();
    });
    this.running.add(run);
  }

  /**
   * Refuse, before any request, to send hashes the reservation does not cover: under SCAL2 exactly the
   * bound hashes (as a multiset), under SCAL1 exactly as many as were reserved.
   */
  private checkBinding(reservation: SadReservation, hashes: Buffer[]): void {
    const ok = reservation.scal === 2 ? reservation.covers(hashes) : reservation.count === hashes.length;
    if (ok) return;
    // runBatch wraps this with the credential and batch size.
    throw new CscError({
      endpoint: SIGN_HASH,
      retryable: false,
      detail:
        reservation.scal === 2
          ? `the SCAL2 reservation is bound to other hashes than the batch's; nothing sent`
          : `the reservation covers ${reservation.count} signatures, the batch has ${hashes.length}; nothing sent`,
    });
  }

  private async runBatch(all: Waiting[]): Promise<void> {
    const credentialId = this.credential.credentialId;
    const started = performance.now();
    let reservation: SadReservation;
    this.reserving += all.length;
    try {
      reservation = await this.sadManager.reserve(
        all.map((w) => w.hash),
        runsOf(all),
        { upTo: true },
      );
    } catch (err) {
      this.counts.batches++;
      await this.fail(all, undefined, err, started);
      return;
    } finally {
      this.reserving -= all.length;
    }
    let batch = all;
    if (reservation.count < all.length && !this.sadManager.approvalBased) {
      // The current SAD had fewer left than the batch: they are spent to the last, and the rest of the
      // batch goes under the next SAD in a call of its own (one signHash carries one SAD).
      const { covered, rest } = split(all, reservation);
      await Promise.all([this.signPart(covered, reservation, started), this.runBatch(rest)]);
      return;
    }
    if (reservation.count < all.length) {
      // An approval covered part of the batch: sign that part; the rest waits for the next approval.
      const { covered, rest } = split(all, reservation);
      const waiting = new ApprovalNeededError(
        this.tenant,
        credentialId,
        reservation.scal === 2 ? 'unbound' : 'spent',
      );
      for (const w of rest) w.reject(waiting);
      batch = covered;
    }
    await this.signPart(batch, reservation, started);
  }

  /** One signHash call for `batch` under `reservation`; settles every caller of the batch, never throws. */
  private async signPart(batch: Waiting[], reservation: SadReservation, started: number): Promise<void> {
    const credentialId = this.credential.credentialId;
    this.counts.batches++;
    // The call's own latency, not the reservation's (an authorisation may have come first).
    // When the call went out (undefined: refused here before sending, so no call to count).
    let sent: number | undefined;
    try {
      const hashes = batch.map((w) => w.hash);
      this.checkBinding(reservation, hashes);
      sent = performance.now();
      const signatures =
        reservation.kind === 'credential-token'
          ? await this.client.signHash({
              credential: this.credential,
              hashes,
              credentialToken: reservation.sadFor(hashes, credentialId),
            })
          : await this.client.signHash({ credential: this.credential, reservation, hashes });
      batch.forEach((w, i) => w.resolve(signatures[i]!));
      this.counts.signatures += signatures.length;
      this.told(batch, sent, true);
      this.logger.info(
        { credentialId, size: batch.length, ms: Math.round(performance.now() - started) },
        'CSC batch signed',
      );
    } catch (err) {
      const limit = err instanceof CscError ? statedHashLimit(err, batch.length) : undefined;
      // A call the provider refused (for its size too) is a call it saw and may count.
      if (sent !== undefined) this.told(batch, sent, false);
      if (limit === undefined) {
        await this.fail(batch, reservation, err, started);
        return;
      }
      // Not a batch that failed: the provider refused its size before signing anything.
      this.counts.batches--;
      this.learnLimit(limit, err as CscError);
      await this.signInParts(batch, reservation, started);
    }
  }

  /** Tells the observer of one signHash call for `batch`. */
  private told(batch: Waiting[], started: number, ok: boolean): void {
    if (!this.observe) return;
    const runs: Record<string, number> = {};
    for (const w of batch) if (w.runId !== undefined) runs[w.runId] = (runs[w.runId] ?? 0) + 1;
    this.observe({
      type: 'signHash',
      tenant: this.tenant,
      credentialId: this.credential.credentialId,
      hashes: batch.length,
      ms: performance.now() - started,
      ok,
      runs,
    });
  }

  private learnLimit(limit: number, err: CscError): void {
    const known = this.providerLimit;
    if (known !== undefined && known <= limit) return;
    this.providerLimit = limit;
    const log = {
      credentialId: this.credential.credentialId,
      batchSize: this.batchSize,
      providerLimit: limit,
      status: err.status,
      error: err.error,
      errorDescription: err.errorDescription,
    };
    if (known === undefined) {
      this.logger.warn(
        log,
        "the provider's limit of hashes per signHash call is lower than batchSize; batches are split to it",
      );
    } else {
      this.logger.info(log, 'the provider refused a smaller batch too; splitting further');
    }
  }

  /**
   * Sign a batch the provider found too large in parts of at most its limit. A tenant's approval was
   * drawn (and under SCAL2 its bound hashes taken) for the whole batch, and the refused call spent none
   * of it, so each part gets its share of that reservation: drawing again would spend the approval
   * twice. Otherwise each part is reserved anew at its own size: under SCAL1 from the SAD manager's
   * current SAD, under SCAL2 with an authorisation bound to exactly the part's hashes.
   */
  private async signInParts(batch: Waiting[], whole: SadReservation, started: number): Promise<void> {
    const size = this.sizeNow();
    for (let at = 0; at < batch.length; at += size) {
      const part = batch.slice(at, at + size);
      let reservation: SadReservation;
      try {
        reservation = this.sadManager.approvalBased
          ? share(
              whole,
              part.map((w) => w.hash),
              this.credential.credentialId,
            )
          : await this.sadManager.reserve(
              part.map((w) => w.hash),
              runsOf(part),
            );
      } catch (err) {
        this.counts.batches++;
        await this.fail(part, undefined, err, started);
        continue;
      }
      await this.signPart(part, reservation, started);
    }
  }

  /** Rejects every caller of a batch that failed, having first retired or invalidated what it used. */
  private async fail(
    batch: Waiting[],
    reservation: SadReservation | undefined,
    err: unknown,
    started: number,
  ): Promise<void> {
    const credentialId = this.credential.credentialId;
    if (err instanceof ApprovalNeededError) {
      this.counts.batches--;
      for (const w of batch) w.reject(err);
      return;
    }
    const cause = err instanceof CscError ? err : undefined;
    if (this.sadManager.approvalBased && reservation && cause && isApprovalRefusal(cause, reservation.kind)) {
      // The provider says the approval is spent or expired (its count may differ from ours, e.g.
      // after a lost answer): retire it everywhere; these invoices wait for a new approval.
      const value =
        reservation.scal === 1 ? reservation.sad : reservation.sadFor(reservation.boundTo, credentialId);
      await this.sadManager.retireApproval(value).catch(() => undefined);
      this.logger.warn(
        { credentialId, size: batch.length, status: cause.status, error: cause.error },
        'CSC refused the approval; invoices wait for a new one',
      );
      this.counts.batches--;
      const waiting = new ApprovalNeededError(this.tenant, credentialId, 'expired');
      for (const w of batch) w.reject(waiting);
      return;
    }
    this.counts.failedBatches++;
    // A refused signHash may mean the provider no longer honours this SAD, and an unusable answer may
    // have spent its count: never offer it again. (An expired SAD is transient for the invoices, which
    // a new SAD will seal, but this one is done.)
    const answered4xx = cause?.status !== undefined && cause.status >= 400 && cause.status < 500;
    if (
      reservation !== undefined &&
      (cause instanceof CscBadReplyError || !cause?.retryable || (answered4xx && cause.kind !== 'throttled'))
    ) {
      this.sadManager.invalidate(reservation);
    }
    const failure = new CscError({
      endpoint: cause?.endpoint ?? SIGN_HASH,
      status: cause?.status,
      error: cause?.error,
      errorDescription: cause?.errorDescription,
      kind: cause?.kind ?? 'refused',
      retryAfterMs: cause?.retryAfterMs,
      detail: `credential ${credentialId}, batch of ${batch.length}: ${cause ? afterPrefix(cause) : 'unexpected failure'}`,
      cause: err,
    });
    this.logger.warn(
      {
        credentialId,
        size: batch.length,
        ms: Math.round(performance.now() - started),
        error: failure.message,
      },
      'CSC batch failed',
    );
    for (const w of batch) w.reject(failure);
  }
}

/**
 * The part of an approval-drawn reservation that covers `hashes` (a part of the batch it was drawn
 * for): the same SAD or credential token, for that many signatures (SCAL1) or those hashes (SCAL2).
 */
function share(whole: SadReservation, hashes: Buffer[], credentialId: string): SadReservation {
  if (whole.scal === 1) return new Scal1Reservation(whole.sad, whole.expiresAt, hashes.length, whole.kind);
  return new Scal2Reservation(whole.sadFor(whole.boundTo, credentialId), whole.expiresAt, hashes, whole.kind);
}

/**
 * When `err` refuses a signHash call for carrying too many hashes, how many to send per call from now
 * on; undefined for any other error. CSC (v1.0.4 section 11.9, v2 signatures/signHash) sets no limit
 * and no error code for it: providers answer 400 `invalid_request` (sometimes 413 or 422) with a
 * description such as "Invalid parameter hashes: 128 hashes exceed the limit of 100 per call", "too
 * many hashes", "maximum number of hashes is 100". A number the description states below what was sent
 * is taken as the limit; without one, half. A refusal about the SAD's remaining count ("hashes exceed
 * the 3 signatures left on the SAD") is not about the call's size and is not split.
 */
export function statedHashLimit(err: CscError, sent: number): number | undefined {
  if (sent < 2 || err.kind !== 'refused') return undefined;
  if (err.status !== 400 && err.status !== 413 && err.status !== 422) return undefined;
  const text = `${err.error ?? ''} ${err.errorDescription ?? ''}`.replace(/_/g, ' ');
  if (/\bSAD\b|access token|\bleft\b|remaining|multisign/i.test(text)) return undefined;
  const tooMany = /too many|too large|exceed|maximum|\bmax\b|limit|at most|more than|allowed/i.test(text);
  const aboutHashes = /hash|digest|signatures?\b|documents?\b|items?\b|batch|array/i.test(text);
  // A 413 is about the body's size: split it whatever its text says, but its numbers are bytes.
  if (err.status !== 413 && !(tooMany && aboutHashes)) return undefined;
  const half = Math.ceil(sent / 2);
  if (err.status === 413) return half;
  const after = /(?:limit|maximum|\bmax\b|at most|up to|no more than|allowed)\D{0,40}?(\d+)/i.exec(text);
  const stated = [after?.[1], ...(text.match(/\d+/g) ?? [])]
    .map((n) => (n === undefined ? NaN : Number(n)))
    .find((n) => Number.isInteger(n) && n >= 1 && n < sent);
  return stated ?? half;
}

/** The waiting callers a reservation covers (a SCAL1 prefix, or the SCAL2 bound hashes), and the rest. */
function split(all: Waiting[], reservation: SadReservation): { covered: Waiting[]; rest: Waiting[] } {
  if (reservation.scal === 1) {
    return { covered: all.slice(0, reservation.count), rest: all.slice(reservation.count) };
  }
  const bound = new Map<string, number>();
  for (const h of reservation.boundTo) bound.set(h.toString('hex'), (bound.get(h.toString('hex')) ?? 0) + 1);
  const covered: Waiting[] = [];
  const rest: Waiting[] = [];
  for (const w of all) {
    const key = w.hash.toString('hex');
    const left = bound.get(key) ?? 0;
    if (left > 0) {
      bound.set(key, left - 1);
      covered.push(w);
    } else {
      rest.push(w);
    }
  }
  return { covered, rest };
}

/** A refusal that means the approval's SAD or credential token is no longer good (CSC/OAuth2 codes). */
function isApprovalRefusal(err: CscError, kind: 'sad' | 'credential-token'): boolean {
  // A credential-scope token is the Bearer itself: the provider refuses it as an OAuth2 token (RFC 6750).
  if (kind === 'credential-token') return err.status === 401;
  // With a SAD the Bearer is the service token (a 401 is about that, and fails the batch); CSC refuses a
  // spent or expired SAD as 400 naming the SAD parameter ("Invalid parameter SAD", "SAD expired").
  return err.status === 400 && /\bSAD\b/.test(err.errorDescription ?? '');
}

/** The part of a CscError message after "CSC <endpoint> failed: ". */
function afterPrefix(err: CscError): string {
  const prefix = `CSC ${err.endpoint} failed: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

/** The distinct runs of a batch's hashes. */
function runsOf(batch: Waiting[]): string[] {
  return [...new Set(batch.flatMap((w) => (w.runId === undefined ? [] : [w.runId])))];
}

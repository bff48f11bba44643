// A TimestampSource that asks an RFC 3161 TSA over HTTP(S): one POST of application/timestamp-query
// per digest with a fresh nonce and certReq, the reply checked by checkTimestampToken before it is
// returned. Transient failures (no answer, 5xx, 429, a TSA saying "try later") are retried with a
// short backoff; a refusal or an invalid reply is not. The requests of a batch share one bound on
// how many are in flight, so a night's burst does not swamp the TSA.
import pLimit from 'p-limit';
import { HttpTransportError, requestBytes } from '../common/binary-http';
import { PadesError } from './pades-error';
import { buildTimeStampReq, newNonce, readTimeStampResp } from './timestamp-request';
import { TimestampError } from './timestamp-error';
import { checkTimestampToken, TimestampSource, TimestampToken } from './timestamp-token';

export interface Rfc3161ClientOptions {
  /** The TSA's URL (http or https). */
  url: string;
  /** Whole Authorization header value ("Basic …", "Bearer …"); never put in errors. */
  authorization?: string;
  /** TSA policy to ask for, and to demand in the token. */
  policyOid?: string;
  /** Extra CA (PEM) for the TSA's TLS certificate, beside the platform's roots. */
  caPem?: string | Buffer;
  /** Roots the TSA's signing certificate must chain to. */
  trustedRootsDer: Buffer[];
  /** Intermediates to build the TSA's path from when the token lacks them. */
  extraCertsDer?: Buffer[];
  /** Per request, whole answer. Default 10 000 ms. */
  timeoutMs?: number;
  /** Tries per timestamp, first included. Default 3. */
  attempts?: number;
  /** Requests in flight at once, across all callers of this client. Default 8. */
  maxConcurrent?: number;
  /** First backoff after a transient failure, doubled each time. Default 200 ms. */
  backoffMs?: number;
  /** Local clock for the token's genTime check. Default the system clock. */
  now?: () => Date;
}

export interface Rfc3161ClientStats {
  /** HTTP requests sent (every attempt counts). */
  requests: number;
  /** Most requests that were in flight at once. */
  peakInFlight: number;
}

/** Largest reply accepted: a token with a long chain is a few KB. */
const MAX_REPLY_BYTES = 256 * 1024;
const REPLY_TYPE = 'application/timestamp-reply';

export class Rfc3161Client implements TimestampSource {
  readonly description: string;
  readonly stats: Rfc3161ClientStats = { requests: 0, peakInFlight: 0 };
  private readonly opts: Rfc3161ClientOptions;
  /** Requests in flight, bounded; waiters are served in arrival order. */
  private readonly slots: pLimit.Limit;
  private inFlight = 0;

  constructor(opts: Rfc3161ClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch (cause) {
      throw new PadesError(`TSA URL is not a URL: ${JSON.stringify(opts.url)}`, { cause });
    }
    if (opts.trustedRootsDer.length === 0) {
      throw new PadesError(`TSA ${url.origin}: no trusted roots for its certificate`);
    }
    const maxConcurrent = opts.maxConcurrent ?? 8;
    const attempts = opts.attempts ?? 3;
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
      throw new PadesError(`maxConcurrent must be a positive integer, got ${maxConcurrent}`);
    }
    if (!Number.isInteger(attempts) || attempts < 1) {
      throw new PadesError(`attempts must be a positive integer, got ${attempts}`);
    }
    // Origin and path only: a URL's query or userinfo may hold a token.
    this.description = `RFC 3161 TSA ${url.protocol}//${url.host}${url.pathname}`;
    this.opts = { ...opts, maxConcurrent, attempts };
    this.slots = pLimit(maxConcurrent);
  }

  async timestamp(digest: Buffer): Promise<TimestampToken> {
    const attempts = this.opts.attempts!;
    let backoff = this.opts.backoffMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.slots(() => this.once(digest));
      } catch (err) {
        const e =
          err instanceof TimestampError
            ? err
            : new TimestampError('invalid', `${this.description}: ${(err as Error).message}`, { cause: err });
        if (e.kind !== 'transient' || attempt >= attempts) {
          throw attempt > 1 && e.kind === 'transient'
            ? new TimestampError(e.kind, `${e.message} (after ${attempt} attempts)`, { cause: e })
            : e;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff *= 2;
    }
  }

  private async once(digest: Buffer): Promise<TimestampToken> {
    const nonce = newNonce();
    const query = buildTimeStampReq({
      digest,
      nonce,
      certReq: true,
      ...(this.opts.policyOid ? { policyOid: this.opts.policyOid } : {}),
    });
    this.stats.requests++;
    this.inFlight++;
    this.stats.peakInFlight = Math.max(this.stats.peakInFlight, this.inFlight);
    let answer;
    try {
      answer = await requestBytes(this.opts.url, {
        method: 'POST',
        body: query,
        contentType: 'application/timestamp-query',
        accept: REPLY_TYPE,
        ...(this.opts.authorization ? { headers: { authorization: this.opts.authorization } } : {}),
        timeoutMs: this.opts.timeoutMs ?? 10_000,
        maxBytes: MAX_REPLY_BYTES,
        ...(this.opts.caPem !== undefined ? { caPem: this.opts.caPem } : {}),
      });
    } catch (err) {
      if (err instanceof HttpTransportError) {
        throw new TimestampError('transient', `${this.description}: ${err.message}`, { cause: err });
      }
      throw err;
    } finally {
      this.inFlight--;
    }

    const { status } = answer;
    if (status >= 500 || status === 429 || status === 408) {
      throw new TimestampError('transient', `${this.description} answered HTTP ${status}`);
    }
    if (status !== 200) {
      const hint = status === 401 || status === 403 ? ' (credentials refused)' : '';
      throw new TimestampError('refused', `${this.description} answered HTTP ${status}${hint}`);
    }
    if (answer.contentType !== REPLY_TYPE) {
      throw new TimestampError(
        'invalid',
        `${this.description} answered ${answer.contentType || 'no content type'}, not ${REPLY_TYPE}`,
      );
    }
    try {
      const { tokenDer } = readTimeStampResp(answer.body);
      return checkTimestampToken(tokenDer, {
        digest,
        nonce,
        trustedRootsDer: this.opts.trustedRootsDer,
        ...(this.opts.policyOid ? { policyOid: this.opts.policyOid } : {}),
        ...(this.opts.extraCertsDer ? { extraCertsDer: this.opts.extraCertsDer } : {}),
        ...(this.opts.now ? { now: this.opts.now() } : {}),
      });
    } catch (err) {
      if (err instanceof TimestampError) {
        throw new TimestampError(err.kind, `${this.description}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
}

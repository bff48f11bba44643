// The HTTP layer under the CSC client: one POST with a timeout, CSC/OAuth2 error bodies turned into
// CscError, and bounded polite retries when the provider says 429 or 503. Request bodies and headers
// hold secrets (client secret, password, token, PIN, OTP, SAD), so they never reach an error or a log
// line from here. TLS is always verified: against the platform's roots, plus an extra CA when the
// provider profile names one; there is deliberately no way to skip verification. The transport is undici
// (../common/http-dispatcher.ts); redirects are not followed: a CSC endpoint that moved is an error.
import { STATUS_CODES } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { extraCaDispatcher, headerValue, type Dispatcher } from '../common/http-dispatcher';
import { CscError } from './csc-error';

export interface RetryPolicy {
  /** Extra attempts after a 429/503 answer (0 for requests that must never be re-sent as they are). */
  maxRetries: number;
  /** Longest wait we accept; a Retry-After beyond it fails at once (retryable) instead of stalling. */
  maxDelayMs: number;
}

export interface PostOptions {
  /** Endpoint name used in messages, e.g. `signatures/signHash`. */
  endpoint: string;
  timeoutMs: number;
  retry: RetryPolicy;
  bearer?: string;
  /** A whole `Authorization` header value (e.g. `Basic ...` for auth/login); wins over `bearer`. */
  authorization?: string;
  /** undici dispatcher trusting an extra CA (see `extraCaDispatcher`); absent: the platform's roots. */
  dispatcher?: Dispatcher;
  /** Called just before each request leaves (counts requests, re-sends included). */
  onSend?: () => void;
  /** Called before each wait, so callers can log (without secrets) that the provider pushed back. */
  onBackoff?: (info: { endpoint: string; status: number; waitMs: number; attempt: number }) => void;
  /** Awaited before every attempt, re-sends included: a client-wide wait after a provider's 429. */
  beforeSend?: () => Promise<void>;
}

export interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
}

export async function postJson(url: string, body: unknown, o: PostOptions): Promise<HttpAnswer> {
  return post(url, JSON.stringify(body), 'application/json', o);
}

export async function postForm(url: string, form: URLSearchParams, o: PostOptions): Promise<HttpAnswer> {
  return post(url, form.toString(), 'application/x-www-form-urlencoded', o);
}

/**
 * A 429 that came with Retry-After is a provider over its rate limit, not failing: it did nothing with
 * the request, so waiting as told and sending again is always safe, and several calls in flight may
 * each be refused a few times before their turn. Such answers get this many re-sends (each within
 * maxDelayMs), counted apart from maxRetries.
 */
const RATE_LIMITED_RESENDS = 30;

async function post(url: string, payload: string, contentType: string, o: PostOptions): Promise<HttpAnswer> {
  let limited = 0;
  for (let attempt = 0; ; attempt++) {
    await o.beforeSend?.();
    try {
      return await postOnce(url, payload, contentType, o);
    } catch (err) {
      const rateLimited =
        err instanceof CscError &&
        err.status === 429 &&
        err.retryAfterMs !== undefined &&
        o.retry.maxRetries > 0 &&
        limited < RATE_LIMITED_RESENDS;
      if (rateLimited) {
        limited++;
        attempt--; // not one of the re-sends maxRetries allows
      }
      const wait = err instanceof CscError ? backoffFor(err, rateLimited ? 0 : attempt, o.retry) : undefined;
      if (wait === undefined || !(err instanceof CscError) || err.status === undefined) throw err;
      o.onBackoff?.({ endpoint: o.endpoint, status: err.status, waitMs: wait, attempt: attempt + 1 });
      // The calls refused in one window come back spread a little, not in one instant.
      await sleep(rateLimited ? wait + Math.round(Math.random() * Math.min(250, wait / 4)) : wait);
    }
  }
}

/**
 * Wait before the next attempt after a 429/503, or undefined when this error must not be retried.
 * Also used by the SAD manager, which re-sends credentials/authorize itself with a fresh OTP.
 */
export function backoffFor(
  err: CscError,
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number | undefined {
  if ((err.status !== 429 && err.status !== 503) || attempt >= policy.maxRetries) return undefined;
  // Retry-After is the provider's word: honoured as said. Without it, the wait grows and is jittered
  // ("equal jitter": half fixed, half random) so that many workers pushed back at once do not all
  // come back in the same instant.
  const base = 250 * 2 ** attempt;
  const wait = err.retryAfterMs ?? Math.round(base / 2 + random() * (base / 2));
  return wait > policy.maxDelayMs ? undefined : wait;
}

export { extraCaDispatcher };

/** What one exchange gives back. */
interface RawAnswer {
  status: number;
  statusText: string;
  header(name: string): string | null;
  text: string;
}

async function postOnce(
  url: string,
  payload: string,
  contentType: string,
  o: PostOptions,
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { 'content-type': contentType, accept: 'application/json' };
  if (o.bearer !== undefined) headers.authorization = `Bearer ${o.bearer}`;
  if (o.authorization !== undefined) headers.authorization = o.authorization;
  let res: RawAnswer;
  o.onSend?.();
  try {
    res = await exchange(url, headers, payload, o.dispatcher, o.timeoutMs);
  } catch (err) {
    throw transportError(o.endpoint, o.timeoutMs, err);
  }
  const text = res.text;
  const parsed = parseJsonObject(text);
  if (res.status >= 200 && res.status < 300) {
    if (parsed === undefined) {
      throw new CscError({
        endpoint: o.endpoint,
        status: res.status,
        retryable: false,
        detail: `HTTP ${res.status} with a body that is not a JSON object`,
      });
    }
    return { status: res.status, body: parsed };
  }
  const fields = errorFields(parsed);
  // A bearer-protected endpoint may put the reason only in the challenge (RFC 6750 section 3).
  const challenge = challengeError(res.header('www-authenticate'));
  const error = fields.error ?? challenge;
  throw new CscError({
    endpoint: o.endpoint,
    status: res.status,
    error,
    challengeError: challenge,
    errorDescription: fields.description ?? (error ? undefined : res.statusText || undefined),
    retryAfterMs: parseRetryAfter(res.header('retry-after')),
  });
}

/** One POST over undici; the timeout covers the whole answer, body included. */
async function exchange(
  url: string,
  headers: Record<string, string>,
  payload: string,
  dispatcher: Dispatcher | undefined,
  timeoutMs: number,
): Promise<RawAnswer> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await request(url, {
      method: 'POST',
      headers,
      body: payload,
      signal,
      ...(dispatcher === undefined ? {} : { dispatcher }),
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      // request() gives no reason phrase (HTTP/2 has none); the standard one serves in messages.
      statusText: STATUS_CODES[res.statusCode] ?? '',
      header: (name) => headerValue(res.headers, name),
      text,
    };
  } catch (err) {
    // Whatever fails after the deadline (abort, reset socket) is the deadline's doing: say so.
    throw signal.aborted ? (signal.reason as Error) : err;
  }
}

function challengeError(header: string | null): string | undefined {
  // `\berror=` so that an `error_description="..."` parameter is not taken for the code.
  const m = header === null ? null : /\berror="([^"]{1,80})"/i.exec(header);
  return m?.[1];
}

/**
 * Certificate verification failures (OpenSSL's X509 codes and Node's host-name check). Trying again
 * cannot fix any of them: the profile's CA file or the provider's certificate must change.
 */
const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_REJECTED',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

function transportError(endpoint: string, timeoutMs: number, err: unknown): CscError {
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return new CscError({
      endpoint,
      retryable: true,
      detail: `no answer within ${timeoutMs} ms`,
      cause: err,
    });
  }
  // undici's request() hands the socket's error over as it is; its fetch() would wrap it in `cause`.
  const errno = e?.cause?.code ?? e?.code;
  if (errno !== undefined && TLS_TRUST_CODES.has(errno)) {
    return new CscError({
      endpoint,
      retryable: false,
      detail: `TLS: provider certificate not trusted (${errno})`,
      cause: err,
    });
  }
  const code = errno ? ` (${errno})` : '';
  return new CscError({ endpoint, retryable: true, detail: `network error${code}`, cause: err });
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The CSC error body is `{error, error_description}` (OAuth2 style); providers also send
 * `{error: {code, message}}`, `{errorCode, errorMessage}` or `{code, message}`. Take whichever is there.
 */
function errorFields(body: Record<string, unknown> | undefined): { error?: string; description?: string } {
  if (!body) return {};
  const nested =
    body.error !== null && typeof body.error === 'object' ? (body.error as Record<string, unknown>) : {};
  const error = firstString(body.error, body.error_code, body.errorCode, nested.code, body.code);
  const description = firstString(
    body.error_description,
    body.errorDescription,
    body.error_message,
    body.errorMessage,
    nested.message,
    nested.description,
    body.message,
  );
  return { error: error && clean(error, 80), description: description && clean(description, 300) };
}

function firstString(...values: unknown[]): string | undefined {
  for (const v of values) {
    if (typeof v === 'string' && v.trim() !== '') return v;
    if (typeof v === 'number') return String(v);
  }
  return undefined;
}

/** Provider text goes into our messages and logs: keep it one short line. */
function clean(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const one = s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

// The HTTP layer under the CSC client: one POST with a timeout, CSC/OAuth2 error bodies turned into
// CscError, and bounded polite retries when the provider says 429 or 503. Request bodies hold secrets
// (client secret, PIN, OTP, SAD), so they never reach an error or a log line from here.
import { setTimeout as sleep } from 'node:timers/promises';
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
  /** Called just before each request leaves (counts requests, re-sends included). */
  onSend?: () => void;
  /** Called before each wait, so callers can log (without secrets) that the provider pushed back. */
  onBackoff?: (info: { endpoint: string; status: number; waitMs: number; attempt: number }) => void;
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

async function post(url: string, payload: string, contentType: string, o: PostOptions): Promise<HttpAnswer> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await postOnce(url, payload, contentType, o);
    } catch (err) {
      const wait = err instanceof CscError ? backoffFor(err, attempt, o.retry) : undefined;
      if (wait === undefined || !(err instanceof CscError) || err.status === undefined) throw err;
      o.onBackoff?.({ endpoint: o.endpoint, status: err.status, waitMs: wait, attempt: attempt + 1 });
      await sleep(wait);
    }
  }
}

/**
 * Wait before the next attempt after a 429/503, or undefined when this error must not be retried.
 * Also used by the SAD manager, which re-sends credentials/authorize itself with a fresh OTP.
 */
export function backoffFor(err: CscError, attempt: number, policy: RetryPolicy): number | undefined {
  if ((err.status !== 429 && err.status !== 503) || attempt >= policy.maxRetries) return undefined;
  // Without Retry-After, grow the wait so a struggling provider is not hammered.
  const wait = err.retryAfterMs ?? 250 * 2 ** attempt;
  return wait > policy.maxDelayMs ? undefined : wait;
}

async function postOnce(
  url: string,
  payload: string,
  contentType: string,
  o: PostOptions,
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { 'content-type': contentType, accept: 'application/json' };
  if (o.bearer !== undefined) headers.authorization = `Bearer ${o.bearer}`;
  let res: Response;
  let text: string;
  o.onSend?.();
  try {
    res = await fetch(url, {
      method: 'POST',
      headers,
      body: payload,
      signal: AbortSignal.timeout(o.timeoutMs),
    });
    text = await res.text();
  } catch (err) {
    throw transportError(o.endpoint, o.timeoutMs, err);
  }
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
  const challenge = challengeError(res.headers.get('www-authenticate'));
  const error = fields.error ?? challenge;
  throw new CscError({
    endpoint: o.endpoint,
    status: res.status,
    error,
    challengeError: challenge,
    errorDescription: fields.description ?? (error ? undefined : res.statusText || undefined),
    retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
  });
}

function challengeError(header: string | null): string | undefined {
  // `\berror=` so that an `error_description="..."` parameter is not taken for the code.
  const m = header === null ? null : /\berror="([^"]{1,80})"/i.exec(header);
  return m?.[1];
}

function transportError(endpoint: string, timeoutMs: number, err: unknown): CscError {
  const e = err as { name?: string; cause?: { code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return new CscError({
      endpoint,
      retryable: true,
      detail: `no answer within ${timeoutMs} ms`,
      cause: err,
    });
  }
  const code = e?.cause?.code ? ` (${e.cause.code})` : '';
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

// CscError: the one error type of the CSC part. It names the endpoint and carries the provider's CSC
// error fields (status, error, error_description) and whether a later attempt may succeed. Request
// bodies carry PINs, OTPs and SADs, so no message is ever built from one.
import { SealerError } from '../common/errors';

export interface CscErrorFields {
  endpoint: string;
  status?: number;
  error?: string;
  errorDescription?: string;
  /** The `error` of a `WWW-Authenticate: Bearer` challenge (RFC 6750 section 3), when the answer had one. */
  challengeError?: string;
  /** A later attempt may succeed (rate limits, outages, timeouts); false for refusals and protocol faults. */
  retryable?: boolean;
  /** Milliseconds the provider asked us to wait (Retry-After), when it said. */
  retryAfterMs?: number;
  /** Free text that replaces the "HTTP <status> <error>: <description>" part of the message. */
  detail?: string;
  cause?: unknown;
}

export class CscError extends SealerError {
  readonly endpoint: string;
  readonly status?: number;
  /** The provider's `error` value exactly as sent (spellings vary between providers). */
  readonly error?: string;
  readonly errorDescription?: string;
  /** The `error` of the answer's `WWW-Authenticate: Bearer` challenge, if any. */
  readonly challengeError?: string;
  /** `error` in one spelling: lower case, snake_case (`invalidRequest`, `INVALID-REQUEST` → `invalid_request`). */
  readonly code?: string;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;

  constructor(fields: CscErrorFields) {
    super(`CSC ${fields.endpoint} failed: ${fields.detail ?? describe(fields)}`, { cause: fields.cause });
    this.endpoint = fields.endpoint;
    this.status = fields.status;
    this.error = fields.error;
    this.errorDescription = fields.errorDescription;
    this.challengeError = fields.challengeError;
    this.code = fields.error === undefined ? undefined : normaliseErrorCode(fields.error);
    this.retryable = fields.retryable ?? isRetryableStatus(fields.status);
    this.retryAfterMs = fields.retryAfterMs;
  }
}

function describe(f: CscErrorFields): string {
  const head = f.status === undefined ? 'no HTTP status' : `HTTP ${f.status}`;
  const code = f.error ? ` ${f.error}` : '';
  const text = f.errorDescription ? `: ${f.errorDescription}` : '';
  return `${head}${code}${text}`;
}

/** 429 and 5xx are worth another try later; any other refusal will be refused again. */
export function isRetryableStatus(status: number | undefined): boolean {
  return status === 429 || (status !== undefined && status >= 500);
}

export function normaliseErrorCode(error: string): string {
  return error
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[\s.-]+/g, '_')
    .toLowerCase();
}

/** The CSC table's (section 10.2) token errors, plus spellings providers use for the same thing. */
const TOKEN_ERROR_CODES = new Set([
  'invalid_token',
  'expired_token',
  'token_expired',
  'token_invalid',
  'invalid_access_token',
  'expired_access_token',
  'access_token_expired',
]);

/**
 * A 401 that refuses the service access token, judged by error codes, never by wording. The body's
 * `error` decides when it is specific; a generic `invalid_request` (or no body) defers to the Bearer
 * challenge (RFC 6750 section 3); a 401 with no error code anywhere is about the token. Any other
 * code (e.g. `invalid_pin` or `access_denied` sent as 401) is not a token problem.
 */
export function isServiceTokenRefusal(err: CscError): boolean {
  if (err.status !== 401) return false;
  const fromBody = err.error !== undefined && err.error !== err.challengeError ? err.code : undefined;
  const challenge = err.challengeError === undefined ? undefined : normaliseErrorCode(err.challengeError);
  if (fromBody !== undefined && fromBody !== 'invalid_request') return TOKEN_ERROR_CODES.has(fromBody);
  if (challenge !== undefined) return TOKEN_ERROR_CODES.has(challenge);
  return fromBody === undefined;
}

// CscError: the one error type of the CSC part. It names the endpoint and carries the provider's CSC
// error fields (status, error, error_description) and whether a later attempt may succeed. Request
// bodies carry PINs, OTPs and SADs, so no message is ever built from one.
import { SealerError } from '../common/errors';

/**
 * What a provider error means for the work that met it, decided once here (see `kindOf`):
 * - `refused`: the provider looked and said no (bad request, wrong factors, unknown or disabled
 *   credential, not implemented); the same request will be refused again;
 * - `throttled`: 429, come back later (honour `retryAfterMs`);
 * - `transient`: no answer, a timeout, a 5xx other than 501, an expired SAD, a reply that cannot be
 *   used (wrong number of signatures): another attempt may succeed;
 * - `approval-needed`: the tenant's approval is spent, expired or refused; wait for a new one.
 */
export type CscErrorKind = 'refused' | 'throttled' | 'transient' | 'approval-needed';

export interface CscErrorFields {
  endpoint: string;
  status?: number;
  error?: string;
  errorDescription?: string;
  /** The `error` of a `WWW-Authenticate: Bearer` challenge (RFC 6750 section 3), when the answer had one. */
  challengeError?: string;
  /** What the error means (see CscErrorKind); default: decided by `kindOf` from status and code. */
  kind?: CscErrorKind;
  /** Older spelling of `kind`: true is `transient`, false is `refused`. `kind` wins when both are given. */
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
  readonly kind: CscErrorKind;
  readonly retryAfterMs?: number;

  constructor(fields: CscErrorFields) {
    super(`CSC ${fields.endpoint} failed: ${fields.detail ?? describe(fields)}`, { cause: fields.cause });
    this.endpoint = fields.endpoint;
    this.status = fields.status;
    this.error = fields.error;
    this.errorDescription = fields.errorDescription;
    this.challengeError = fields.challengeError;
    this.code = fields.error === undefined ? undefined : normaliseErrorCode(fields.error);
    this.kind =
      fields.kind ??
      (fields.retryable === undefined
        ? kindOf(fields.status, this.code, fields.errorDescription)
        : fields.retryable
          ? fields.status === 429
            ? 'throttled'
            : 'transient'
          : 'refused');
    this.retryAfterMs = fields.retryAfterMs;
  }

  /** A later attempt may succeed: throttled or transient. */
  get retryable(): boolean {
    return this.kind === 'throttled' || this.kind === 'transient';
  }
}

/**
 * The one mapper from an HTTP status and CSC `error` code to a kind. Permanent: 400, 401 (the client
 * has already refreshed its token once), 403, 404, 501 and any other 4xx; transient: no status
 * (network, timeout), 408, 5xx other than 501, and a 400 that says the SAD expired (authorising again
 * gets a new one); throttled: 429.
 */
export function kindOf(status: number | undefined, code?: string, description?: string): CscErrorKind {
  if (status === undefined) return 'transient';
  if (status === 429) return 'throttled';
  if (status === 501) return 'refused';
  if (status >= 500 || status === 408) return 'transient';
  if (status === 400 && isExpiredSad(code, description)) return 'transient';
  return 'refused';
}

/** CSC answers a spent-by-time SAD with 400 invalid_request "SAD expired" (or a code saying so). */
function isExpiredSad(code: string | undefined, description: string | undefined): boolean {
  if (code === 'expired_sad' || code === 'sad_expired') return true;
  return /\bSAD\b.*\bexpired\b|\bexpired\b.*\bSAD\b/i.test(description ?? '');
}

function describe(f: CscErrorFields): string {
  const head = f.status === undefined ? 'no HTTP status' : `HTTP ${f.status}`;
  const code = f.error ? ` ${f.error}` : '';
  const text = f.errorDescription ? `: ${f.errorDescription}` : '';
  return `${head}${code}${text}`;
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

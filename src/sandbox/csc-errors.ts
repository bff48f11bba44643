// CSC / OAuth2 error responses: the one place that knows which HTTP status and `error` code goes with
// which refusal. Codes and descriptions follow the CSC API v2 tables ("Missing (or invalid type) ...",
// "Invalid parameter ...") and RFC 6749 / 6750 for the OAuth2 and bearer-token cases.

/** A refusal to be sent as `{"error": ..., "error_description": ...}` with the given HTTP status. */
export class CscProtocolError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${status} ${error}: ${description}`);
    this.name = 'CscProtocolError';
  }

  body(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

type ParamKind = 'string' | 'integer' | 'array' | 'boolean' | 'object';

export const cscErrors = {
  missingParam: (name: string, kind: ParamKind) =>
    new CscProtocolError(400, 'invalid_request', `Missing (or invalid type) ${kind} parameter ${name}`),
  invalidParam: (name: string, detail?: string) =>
    new CscProtocolError(400, 'invalid_request', `Invalid parameter ${name}${detail ? `: ${detail}` : ''}`),
  badRequest: (description: string) => new CscProtocolError(400, 'invalid_request', description),
  notFound: (path: string) =>
    new CscProtocolError(404, 'invalid_request', `Unknown API method or path ${JSON.stringify(path)}`),
  methodNotAllowed: (method: string, allow: string) =>
    new CscProtocolError(405, 'invalid_request', `HTTP method ${method} is not allowed here`, {
      Allow: allow,
    }),
  payloadTooLarge: (limit: number) =>
    new CscProtocolError(413, 'invalid_request', `Request body exceeds ${limit} bytes`),

  // The provider's own trouble (what fault injection answers): RFC 6749's server_error and
  // temporarily_unavailable codes; 429 (RFC 6585) with the Retry-After a rate limiter sends.
  serverError: () =>
    new CscProtocolError(500, 'server_error', 'The server encountered an unexpected condition'),
  unavailable: (retryAfterSec?: number) =>
    new CscProtocolError(
      503,
      'temporarily_unavailable',
      'The service is temporarily unavailable; try again later',
      retryAfterSec === undefined ? {} : { 'Retry-After': String(retryAfterSec) },
    ),
  tooManyRequests: (retryAfterSec: number) =>
    new CscProtocolError(
      429,
      'too_many_requests',
      `Request rate limit exceeded; retry after ${retryAfterSec} s`,
      { 'Retry-After': String(retryAfterSec) },
    ),

  // Service authorisation (RFC 6750): a 401 carries a WWW-Authenticate challenge.
  missingToken: () =>
    new CscProtocolError(401, 'invalid_request', 'Missing Authorization header with a Bearer access token', {
      'WWW-Authenticate': 'Bearer realm="csc"',
    }),
  malformedAuthHeader: () =>
    new CscProtocolError(400, 'invalid_request', 'Malformed authorization header', {
      'WWW-Authenticate': 'Bearer realm="csc", error="invalid_request"',
    }),
  invalidToken: () =>
    new CscProtocolError(401, 'invalid_token', 'The access token is not valid', {
      'WWW-Authenticate': 'Bearer realm="csc", error="invalid_token"',
    }),
  expiredToken: () =>
    new CscProtocolError(401, 'expired_token', 'The access token has expired', {
      'WWW-Authenticate': 'Bearer realm="csc", error="invalid_token", error_description="expired"',
    }),

  // OAuth2 token endpoint (RFC 6749 section 5.2).
  invalidClient: (basicUsed: boolean) =>
    new CscProtocolError(
      401,
      'invalid_client',
      'Client authentication failed',
      basicUsed ? { 'WWW-Authenticate': 'Basic realm="oauth2"' } : {},
    ),

  // credentials/authorize
  tooManySignatures: (multisign: number) =>
    new CscProtocolError(
      400,
      'invalid_request',
      `Numbers of signatures is too high (multisign is ${multisign})`,
    ),
  invalidPin: () => new CscProtocolError(400, 'invalid_pin', 'The PIN is invalid'),
  invalidOtp: () => new CscProtocolError(400, 'invalid_otp', 'The OTP is invalid'),
  otpAlreadyUsed: () =>
    new CscProtocolError(
      400,
      'invalid_otp',
      'The OTP was already used (a code is accepted once); send the code of a later time step',
    ),
  credentialLocked: (retryAfterSec: number) =>
    new CscProtocolError(
      400,
      'invalid_request',
      `Credential locked after repeated authentication failures; retry in ${retryAfterSec} s`,
    ),

  // signatures/signHash
  sadExpired: () => new CscProtocolError(400, 'invalid_request', 'SAD expired'),
  hashNotAuthorized: (index: number) =>
    new CscProtocolError(400, 'invalid_request', `Hash is not authorized by the SAD (hashes[${index}])`),
  invalidDigestLength: (index: number, length: number, expected: number) =>
    new CscProtocolError(
      400,
      'invalid_request',
      `Invalid digest value length (hashes[${index}] is ${length} bytes, expected ${expected})`,
    ),
  invalidBase64Hash: (name: string, index: number) =>
    new CscProtocolError(400, 'invalid_request', `Invalid Base64 hash string parameter ${name}[${index}]`),
  emptyHashArray: (name: string) => new CscProtocolError(400, 'invalid_request', `Empty hash array ${name}`),
};

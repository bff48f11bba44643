// CSC `auth/login` (`POST /csc/v2/auth/login`): the application authenticates with HTTP Basic (the
// tenant's login user and password) and gets a service access token of the same kind /oauth2/token
// issues. No refresh tokens: `rememberMe` is accepted and ignored, which the specification allows (the
// answer simply has no refresh_token), and a `refresh_token` presented is refused as unknown.
import { sameSecret } from './constant-time';
import { CscProtocolError, cscErrors } from './csc-errors';
import type { RouteRequest, RouteResult } from './context';
import { optionalBoolean, optionalString } from './http-io';

export function handleAuthLogin({ ctx, req, params }: RouteRequest): RouteResult {
  optionalBoolean(params, 'rememberMe');
  if (optionalString(params, 'refresh_token') !== undefined) {
    throw cscErrors.invalidParam('refresh_token');
  }
  const header = req.headers.authorization;
  if (header === undefined || header.trim() === '') throw loginRefused('Missing HTTP Basic credentials');
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match?.[1]) throw cscErrors.malformedAuthHeader();
  // RFC 7617: base64 of UTF-8 "user-id:password", the user-id free of colons.
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw cscErrors.badRequest('Malformed username-password in Basic credentials');
  const user = decoded.slice(0, colon);
  const tenant = ctx.state.tenantsByLoginUser.get(user);
  // Compare a password even for an unknown user, so timing does not tell which user names exist.
  const passwordOk = sameSecret(decoded.slice(colon + 1), tenant?.loginPassword ?? '\u0000');
  if (tenant === undefined || !passwordOk) {
    ctx.logger.info({ loginUser: user.slice(0, 100) }, 'sandbox: auth/login failed');
    throw loginRefused('Invalid username or password');
  }
  const { accessToken, expiresInSec } = ctx.tokens.issue(tenant.clientId, tenant.tenant);
  return { body: { access_token: accessToken, token_type: 'Bearer', expires_in: expiresInSec } };
}

/** 401 with a Basic challenge (RFC 7235): the credentials, not the request, are wrong. */
function loginRefused(description: string): CscProtocolError {
  return new CscProtocolError(401, 'access_denied', description, {
    'WWW-Authenticate': 'Basic realm="csc", charset="UTF-8"',
  });
}

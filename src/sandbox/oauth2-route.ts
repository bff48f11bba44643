// The OAuth2 token endpoint (`POST /oauth2/token`): the client authenticates with HTTP Basic or
// client_id/client_secret in the body (never both, RFC 6749 2.3.1). `client_credentials` gives a
// service-scope Bearer token bound to the client and its tenant; `authorization_code` trades a code from
// the approval page for a credential-scope token (authorization-code-grant.ts).
import { grantAuthorizationCode } from './authorization-code-grant';
import { sameSecret } from './constant-time';
import { CscProtocolError, cscErrors } from './csc-errors';
import type { RouteRequest, RouteResult } from './context';
import { optionalString } from './http-io';

interface ClientAuth {
  clientId?: string;
  clientSecret?: string;
  basicUsed: boolean;
}

export function handleToken({ ctx, req, params }: RouteRequest): RouteResult {
  const auth = clientAuth(req.headers.authorization, params);
  if (auth.clientId === undefined)
    throw new CscProtocolError(400, 'invalid_request', 'Missing parameter client_id');
  const tenant = ctx.state.tenantsByClientId.get(auth.clientId);
  if (
    tenant === undefined ||
    auth.clientSecret === undefined ||
    !sameSecret(auth.clientSecret, tenant.clientSecret)
  ) {
    ctx.logger.info({ clientId: auth.clientId }, 'sandbox: client authentication failed');
    throw cscErrors.invalidClient(auth.basicUsed);
  }

  const grantType = optionalString(params, 'grant_type');
  if (grantType === undefined)
    throw new CscProtocolError(400, 'invalid_request', 'Missing parameter grant_type');
  if (grantType === 'authorization_code') return grantAuthorizationCode(ctx, tenant, params);
  if (grantType !== 'client_credentials') {
    throw new CscProtocolError(
      400,
      'unsupported_grant_type',
      `Invalid parameter grant_type: only client_credentials and authorization_code are supported, got ${JSON.stringify(grantType)}`,
    );
  }
  const scope = optionalString(params, 'scope');
  if (scope !== undefined && scope !== 'service') {
    throw new CscProtocolError(
      400,
      'invalid_scope',
      'Invalid parameter scope: only "service" may be requested',
    );
  }

  const { accessToken, expiresInSec } = ctx.tokens.issue(tenant.clientId, tenant.tenant);
  return {
    body: { access_token: accessToken, token_type: 'Bearer', expires_in: expiresInSec, scope: 'service' },
  };
}

function clientAuth(header: string | undefined, params: Record<string, unknown>): ClientAuth {
  const bodyId = optionalString(params, 'client_id');
  const bodySecret = optionalString(params, 'client_secret');
  if (header === undefined) return { clientId: bodyId, clientSecret: bodySecret, basicUsed: false };

  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match?.[1]) throw cscErrors.malformedAuthHeader();
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0)
    throw new CscProtocolError(400, 'invalid_request', 'Malformed username-password in Basic credentials');
  const clientId = formDecode(decoded.slice(0, colon));
  if (bodySecret !== undefined) {
    throw new CscProtocolError(
      400,
      'invalid_request',
      'Use one client authentication method, not Basic and client_secret',
    );
  }
  if (bodyId !== undefined && bodyId !== clientId) {
    throw new CscProtocolError(
      400,
      'invalid_request',
      'Invalid parameter client_id: differs from the Basic credentials',
    );
  }
  return { clientId, clientSecret: formDecode(decoded.slice(colon + 1)), basicUsed: true };
}

// RFC 6749 2.3.1: Basic credentials are form-urlencoded before Base64.
function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

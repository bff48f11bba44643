// The token endpoint's `grant_type=authorization_code` (RFC 6749 section 4.1.3, CSC API v2 oauth2/token):
// an authenticated client trades a code from the approval page, with the same redirect_uri and the PKCE
// code_verifier of its request (RFC 7636 section 4.5), for a
// credential-scope access token bound to the approved credential, count, expiry and (SCAL2) hashes.
// The answer repeats what was granted as RFC 9396 `authorization_details`.
import crypto from 'node:crypto';
import type { RouteResult, SandboxContext } from './context';
import { CscProtocolError } from './csc-errors';
import { optionalString, type Params } from './http-io';
import { OID } from './oids';
import type { LoadedTenant } from './provisioning';

export function grantAuthorizationCode(
  ctx: SandboxContext,
  client: LoadedTenant,
  params: Params,
): RouteResult {
  const code = optionalString(params, 'code');
  if (code === undefined || code === '')
    throw new CscProtocolError(400, 'invalid_request', 'Missing parameter code');
  const redirectUri = optionalString(params, 'redirect_uri');
  if (redirectUri === undefined) {
    // Required, since the authorization request always carries one here (section 4.1.3).
    throw new CscProtocolError(400, 'invalid_request', 'Missing parameter redirect_uri');
  }
  const scope = optionalString(params, 'scope');
  if (scope !== undefined && scope !== 'credential') {
    throw new CscProtocolError(
      400,
      'invalid_scope',
      'Invalid parameter scope: the code grants scope "credential"',
    );
  }
  const codeVerifier = optionalString(params, 'code_verifier');
  const { approval, bind } = ctx.codes.redeem(
    code,
    { clientId: client.clientId, redirectUri, codeVerifier },
    (token) => ctx.credentialTokens.revoke(token),
  );
  const { accessToken, expiresInSec } = ctx.credentialTokens.issue(approval);
  bind(accessToken);
  ctx.logger.info(
    { clientId: client.clientId, credentialID: approval.credentialId, numSignatures: approval.numSignatures },
    'sandbox: credential-scope token issued',
  );
  return {
    body: {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: expiresInSec,
      scope: 'credential',
      // Who approved, as an OpenID Connect ID token: a client reading it straight from the token
      // endpoint over TLS may rely on TLS instead of the signature (OIDC Core 3.1.3.7).
      ...(approval.approver ? { id_token: idToken(ctx, client.clientId, approval.approver) } : {}),
      authorization_details: [
        {
          type: 'credential',
          credentialID: approval.credentialId,
          numSignatures: approval.numSignatures,
          ...(approval.hashes
            ? {
                documentDigests: approval.hashes.map((h, i) => ({
                  hash: h.toString('base64'),
                  label: `#${i + 1}`,
                })),
                hashAlgorithmOID: OID.sha256,
              }
            : {}),
        },
      ],
    },
  };
}

/** An ID token naming the approver (HS256 under a per-sandbox key: nobody verifies it but by TLS). */
function idToken(ctx: SandboxContext, clientId: string, approver: string): string {
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({
    iss: ctx.oauth2Url,
    sub: approver,
    aud: clientId,
    iat: now,
    exp: now + 600,
    preferred_username: approver,
  });
  const mac = crypto.createHmac('sha256', ID_TOKEN_KEY).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${mac}`;
}

const ID_TOKEN_KEY = crypto.randomBytes(32);

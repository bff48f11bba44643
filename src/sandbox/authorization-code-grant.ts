// The token endpoint's `grant_type=authorization_code` (RFC 6749 section 4.1.3, CSC API v2 oauth2/token):
// an authenticated client trades a code from the approval page, with the same redirect_uri and the PKCE
// code_verifier of its request (RFC 7636 section 4.5), for a
// credential-scope access token bound to the approved credential, count, expiry and (SCAL2) hashes.
// The answer repeats what was granted as RFC 9396 `authorization_details`.
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

// Reading an `oauth2/authorize` request with scope "credential" (CSC API v2 section 8.4.2, RFC 6749
// section 4.1.1, RFC 9396 for `authorization_details`). What the approver is asked to approve is one
// credential of the client's tenant and a number of signatures, bound under SCAL2 to the hashes.
//
// CSC v2 takes the credential either as query parameters (credentialID, numSignatures, hashes as
// comma-separated base64url, hashAlgorithmOID) or as an RFC 9396 `authorization_details` array whose
// entry of type "credential" names credentialID and documentDigests [{hash, label}] with
// hashAlgorithmOID; numSignatures is accepted there too (the count the approver sees). Both are read.
//
// PKCE (RFC 7636) is required, as a strict provider requires it of a native app's loopback client (RFC
// 8252 section 8.1): code_challenge with code_challenge_method S256; a request without it, or with
// "plain" (the default when the method is left out), is refused with invalid_request (section 4.4.1).
//
// RFC 6749 section 4.1.2.1: a missing, unknown or invalid client_id or redirect_uri is shown to the
// user and never redirected (that would make the provider an open redirector); everything else is
// sent back to the redirect_uri as `error`, `error_description`, `state`.
import type { SandboxContext } from './context';
import type { CredentialApproval } from './code-store';
import { CscProtocolError, cscErrors } from './csc-errors';
import { OID, SHA256_LENGTH } from './oids';
import type { LoadedTenant } from './provisioning';

/** A problem that must not be redirected: the page says it instead. */
export class UnredirectableRequestError extends Error {
  constructor(readonly description: string) {
    super(description);
    this.name = 'UnredirectableRequestError';
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** client_id and redirect_uri, checked before anything may be redirected. */
export function readClientAndRedirect(
  ctx: SandboxContext,
  query: URLSearchParams,
): { tenant: LoadedTenant; redirectUri: string } {
  const clientId = single(query, 'client_id', (d) => new UnredirectableRequestError(d));
  if (clientId === undefined) throw new UnredirectableRequestError('Missing parameter client_id');
  const tenant = ctx.state.tenantsByClientId.get(clientId);
  if (tenant === undefined) throw new UnredirectableRequestError('Unknown client_id');
  const redirectUri = single(query, 'redirect_uri', (d) => new UnredirectableRequestError(d));
  if (redirectUri === undefined) throw new UnredirectableRequestError('Missing parameter redirect_uri');
  checkLoopbackRedirect(redirectUri);
  return { tenant, redirectUri };
}

/**
 * The sandbox registers no redirect URIs, so it allows only what RFC 8252 (section 7.3) allows a
 * native app without registration: http on a loopback host, any port. No fragment (RFC 6749 3.1.2).
 */
function checkLoopbackRedirect(value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UnredirectableRequestError('Invalid parameter redirect_uri: not an absolute URI');
  }
  if (url.protocol !== 'http:' || !LOOPBACK_HOSTS.has(url.hostname)) {
    throw new UnredirectableRequestError(
      'Invalid parameter redirect_uri: only loopback redirects (http://127.0.0.1:PORT/..., http://[::1]:PORT/... or http://localhost:PORT/...) are allowed',
    );
  }
  if (url.hash !== '' || value.includes('#') || url.username !== '' || url.password !== '') {
    throw new UnredirectableRequestError(
      'Invalid parameter redirect_uri: no fragment or user information allowed',
    );
  }
}

/** The rest of the request; refusals are CscProtocolErrors to be sent to the redirect_uri. */
export function readCredentialApproval(
  ctx: SandboxContext,
  tenant: LoadedTenant,
  redirectUri: string,
  query: URLSearchParams,
): CredentialApproval {
  const redirectable = (d: string) => cscErrors.badRequest(d);
  const state = single(query, 'state', redirectable);
  if (state === undefined || state === '') {
    throw cscErrors.badRequest('Missing parameter state (it protects the client against CSRF)');
  }
  const responseType = single(query, 'response_type', redirectable);
  if (responseType !== 'code') {
    throw new CscProtocolError(
      400,
      'unsupported_response_type',
      'Invalid parameter response_type: only "code" is supported',
    );
  }
  const scope = single(query, 'scope', redirectable);
  if (scope !== 'credential') {
    throw new CscProtocolError(
      400,
      'invalid_scope',
      'Invalid parameter scope: this page authorises credentials, scope must be "credential"',
    );
  }
  const codeChallenge = readCodeChallenge(query);
  const details = single(query, 'authorization_details', redirectable);
  const asked = details !== undefined ? fromAuthorizationDetails(details, query) : fromQueryParameters(query);
  return {
    clientId: tenant.clientId,
    tenant: tenant.tenant,
    redirectUri,
    state,
    codeChallenge,
    ...checked(ctx, tenant, asked),
  };
}

/** RFC 7636 section 4.3-4.4: the S256 code_challenge, or invalid_request. */
function readCodeChallenge(query: URLSearchParams): string {
  const fail = (d: string) => cscErrors.badRequest(d);
  const challenge = single(query, 'code_challenge', fail);
  if (challenge === undefined || challenge === '') {
    throw fail('Missing parameter code_challenge: PKCE (RFC 7636) with S256 is required');
  }
  const method = single(query, 'code_challenge_method', fail) ?? 'plain';
  if (method !== 'S256') {
    throw fail(
      `Invalid parameter code_challenge_method: transform algorithm ${JSON.stringify(method)} not supported, only S256`,
    );
  }
  // BASE64URL of a SHA-256 digest, no padding: exactly 43 characters.
  if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) {
    throw fail('Invalid parameter code_challenge: not the base64url of a SHA-256 digest');
  }
  return challenge;
}

interface Asked {
  /** the error code for refusals of this form of request */
  error: string;
  credentialId: string;
  numSignatures?: number;
  hashes?: Buffer[];
}

function fromAuthorizationDetails(raw: string, query: URLSearchParams): Asked {
  const error = 'invalid_authorization_details';
  const fail = (d: string) =>
    new CscProtocolError(400, error, `Invalid parameter authorization_details: ${d}`);
  for (const name of ['credentialID', 'numSignatures', 'hashes']) {
    if (query.has(name)) {
      throw cscErrors.badRequest(`Send ${name} inside authorization_details or as a parameter, not both`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw fail('not JSON');
  }
  if (!Array.isArray(parsed)) throw fail('must be a JSON array (RFC 9396 section 2)');
  const entries = parsed as unknown[];
  const objects = entries.filter((e): e is Record<string, unknown> => e !== null && typeof e === 'object');
  if (objects.length !== entries.length) throw fail('every entry must be an object');
  const unknownType = objects.find((o) => o.type !== 'credential');
  if (unknownType !== undefined) throw fail(`unsupported type ${JSON.stringify(unknownType.type)}`);
  if (objects.length !== 1) throw fail('exactly one entry of type "credential" is supported');
  const d = objects[0]!;
  if (typeof d.credentialID !== 'string' || d.credentialID === '') {
    throw fail('credentialID (string) is required; signatureQualifier alone is not supported');
  }
  let numSignatures: number | undefined;
  if (d.numSignatures !== undefined) {
    if (typeof d.numSignatures !== 'number' || !Number.isSafeInteger(d.numSignatures)) {
      throw fail('numSignatures must be an integer');
    }
    numSignatures = d.numSignatures;
  }
  let hashes: Buffer[] | undefined;
  if (d.documentDigests !== undefined) {
    if (!Array.isArray(d.documentDigests) || d.documentDigests.length === 0) {
      throw fail('documentDigests must be a non-empty array');
    }
    hashes = (d.documentDigests as unknown[]).map((dd, i) => {
      const hash = (dd as { hash?: unknown } | null)?.hash;
      return digest(hash, 'base64', () => fail(`documentDigests[${i}].hash is not a Base64 SHA-256 digest`));
    });
    if (d.hashAlgorithmOID !== OID.sha256) {
      throw fail(`hashAlgorithmOID must be SHA-256 (${OID.sha256}) when documentDigests are given`);
    }
  }
  return { error, credentialId: d.credentialID, numSignatures, hashes };
}

function fromQueryParameters(query: URLSearchParams): Asked {
  const error = 'invalid_request';
  const one = (name: string) => single(query, name, (d) => cscErrors.badRequest(d));
  const credentialId = one('credentialID');
  if (credentialId === undefined || credentialId === '') {
    throw cscErrors.badRequest(
      'Missing parameter credentialID (or authorization_details) for scope credential',
    );
  }
  const n = one('numSignatures');
  let numSignatures: number | undefined;
  if (n !== undefined) {
    if (!/^\d{1,9}$/.test(n)) throw cscErrors.invalidParam('numSignatures', 'expected an integer');
    numSignatures = Number(n);
  }
  const list = one('hashes');
  let hashes: Buffer[] | undefined;
  if (list !== undefined) {
    hashes = list
      .split(',')
      .map((h, i) =>
        digest(h, 'base64url', () =>
          cscErrors.invalidParam('hashes', `hashes[${i}] is not a base64url SHA-256 digest`),
        ),
      );
    if (one('hashAlgorithmOID') !== OID.sha256) {
      throw cscErrors.invalidParam('hashAlgorithmOID', `only SHA-256 (${OID.sha256}) is supported`);
    }
  }
  return { error, credentialId, numSignatures, hashes };
}

function checked(
  ctx: SandboxContext,
  tenant: LoadedTenant,
  asked: Asked,
): Pick<CredentialApproval, 'credentialId' | 'numSignatures' | 'hashes'> {
  const fail = (d: string) => new CscProtocolError(400, asked.error, d);
  const cred = ctx.state.credentials.get(asked.credentialId);
  // Another tenant's credential is refused exactly like an unknown one.
  if (cred === undefined || cred.public.tenant !== tenant.tenant)
    throw fail('Invalid parameter credentialID');
  const numSignatures = asked.numSignatures ?? asked.hashes?.length;
  if (numSignatures === undefined) throw fail('Missing parameter numSignatures');
  if (numSignatures < 1) throw fail('Invalid value for parameter numSignatures');
  if (numSignatures > cred.public.multisign) {
    throw fail(`Numbers of signatures is too high (multisign is ${cred.public.multisign})`);
  }
  if (cred.public.scal === 2 && asked.hashes === undefined) {
    throw fail(`Credential ${asked.credentialId} is SCAL2: the hashes to be signed are required`);
  }
  if (asked.hashes !== undefined && asked.hashes.length !== numSignatures) {
    throw fail(`${asked.hashes.length} hashes given for numSignatures ${numSignatures}`);
  }
  return { credentialId: cred.public.credentialId, numSignatures, hashes: asked.hashes };
}

/** A canonical Base64 / base64url (padding optional) SHA-256 digest, or the error from `fail`. */
function digest(value: unknown, encoding: 'base64' | 'base64url', fail: () => Error): Buffer {
  if (typeof value !== 'string' || value === '') throw fail();
  const bytes = Buffer.from(value, encoding);
  // Buffer.from ignores junk; a round trip is the only strict check it offers.
  if (bytes.toString(encoding).replace(/=+$/, '') !== value.replace(/=+$/, '')) throw fail();
  if (bytes.length !== SHA256_LENGTH) throw fail();
  return bytes;
}

/** RFC 6749 section 3.1: parameters must not be sent more than once. */
function single(query: URLSearchParams, name: string, fail: (d: string) => Error): string | undefined {
  const all = query.getAll(name);
  if (all.length > 1) throw fail(`Parameter ${name} is repeated`);
  return all[0];
}

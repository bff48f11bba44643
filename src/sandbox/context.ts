// What every sandbox route handler receives: the loaded state, the token / SAD / lock stores, the
// resolved options and the counters. Also the tenant-scoped credential lookup all CSC routes share, and
// the Bearer check that lets signatures/signHash take a credential-scope token instead of a SAD.
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { cscErrors } from './csc-errors';
import type { EcdsaSignatureFormat } from './hash-signer';
import type { Params } from './http-io';
import type { AuthorizationCodeStore, PendingApprovals } from './code-store';
import type { CredentialLock } from './credential-lock';
import type { CredentialTokenStore } from './credential-token-store';
import type { LoadedCredential, SandboxState } from './provisioning';
import type { SadStore } from './sad-store';
import type { TokenGrant, TokenStore } from './token-store';
import type { TotpVerifier } from './totp-verifier';
import type { SandboxStats } from './types';

export interface SandboxContext {
  state: SandboxState;
  tokens: TokenStore;
  sads: SadStore;
  /** Authorization codes of the credential approval page, and the requests it shows. */
  codes: AuthorizationCodeStore;
  approvals: PendingApprovals;
  /** Credential-scope access tokens (they stand in for a SAD at signatures/signHash). */
  credentialTokens: CredentialTokenStore;
  lock: CredentialLock;
  /** TOTP checks and the last accepted time step per credential. */
  totp: TotpVerifier;
  stats: SandboxStats;
  logger: Logger;
  ecdsaSignatureFormat: EcdsaSignatureFormat;
  maxHashesPerCall: number;
  oauth2Url: string;
}

export interface RouteRequest {
  ctx: SandboxContext;
  req: IncomingMessage;
  params: Params;
  /** Present on routes that require a Bearer token. */
  grant?: TokenGrant;
  /** The Bearer token when it was a credential-scope one (routes that accept those only). */
  credentialToken?: string;
}

/** A JSON `body`, or an HTML page, or a redirect (302 to `location`). */
export interface RouteResult {
  status?: number;
  body?: unknown;
  html?: string;
  location?: string;
}

export type RouteHandler = (r: RouteRequest) => RouteResult;

/**
 * The caller behind an `Authorization: Bearer` header: a service token, or, where a route accepts one,
 * a credential-scope token (CSC API v2 signatures/signHash: the SAD is "not needed if the signing
 * application has passed an access token in the Authorization HTTP header with scope credential").
 */
export function authenticateBearer(
  ctx: SandboxContext,
  authorization: string | undefined,
  acceptCredentialScope: boolean,
): { grant: TokenGrant; credentialToken?: string } {
  const token = acceptCredentialScope ? /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1] : undefined;
  const scoped = token === undefined ? undefined : ctx.credentialTokens.lookup(token);
  if (token !== undefined && scoped !== undefined) {
    return {
      grant: { clientId: scoped.clientId, tenant: scoped.tenant, expiresAt: scoped.expiresAt },
      credentialToken: token,
    };
  }
  return { grant: ctx.tokens.authenticate(authorization) };
}

export function requireGrant(r: RouteRequest): TokenGrant {
  if (r.grant === undefined) throw new Error('route needs a token but the dispatcher gave none');
  return r.grant;
}

/**
 * A credential the caller's tenant owns. Another tenant's credential is refused exactly like an
 * unknown one, so a client cannot probe which credential IDs exist elsewhere.
 */
export function ownedCredential(
  ctx: SandboxContext,
  grant: TokenGrant,
  credentialId: string,
): LoadedCredential {
  const cred = ctx.state.credentials.get(credentialId);
  if (cred === undefined || cred.public.tenant !== grant.tenant) throw cscErrors.invalidParam('credentialID');
  return cred;
}

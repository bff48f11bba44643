// What every sandbox route handler receives: the loaded state, the token / SAD / lock stores, the
// resolved options and the counters. Also the tenant-scoped credential lookup all CSC routes share.
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { cscErrors } from './csc-errors';
import type { EcdsaSignatureFormat } from './hash-signer';
import type { Params } from './http-io';
import type { CredentialLock } from './credential-lock';
import type { LoadedCredential, SandboxState } from './provisioning';
import type { SadStore } from './sad-store';
import type { TokenGrant, TokenStore } from './token-store';
import type { TotpVerifier } from './totp-verifier';
import type { SandboxStats } from './types';

export interface SandboxContext {
  state: SandboxState;
  tokens: TokenStore;
  sads: SadStore;
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
}

export interface RouteResult {
  status?: number;
  body: unknown;
}

export type RouteHandler = (r: RouteRequest) => RouteResult;

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

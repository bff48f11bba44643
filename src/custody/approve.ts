// A tenant that keeps its own factors approves a number of seals before the night: on the provider's
// page (OAuth2 authorization code, scope `credential`) or at a prompt (credentials/authorize with the
// PIN and OTP typed in, then forgotten). Either way the SAD or credential-scope token is parked in
// Redis, encrypted, for every worker process to draw on, and the approval goes into the audit trail.
//
// The approval flows are custody's; the OAuth2 authorization-code client they drive (URL, loopback
// redirect, PKCE, code exchange) is CSC protocol and stays in src/csc (authorization-code.ts).
import type { Redis } from 'ioredis';
import {
  buildAuthorizationUrl,
  CscClient,
  hashListDigest,
  exchangeCode,
  pkceChallenge,
  startLoopbackRedirect,
  type ApprovalKind,
} from '../csc';
import { apiVersionOf, JobConfigError, providerCaOf, resolveSecret, type JobDefinition } from '../jobs';
import { AuditLog } from '../outbox';
import type { Logger } from '../common/logger';
import { clearCredentialLatch } from './credential-latches';
import { loadKek } from './factor-vault';
import { ParkedApprovals, secretFingerprint } from './parked-approvals';
import { serviceAuthOf } from './service-auth-of';

export interface ApproveOptions {
  job: JobDefinition;
  /** signatures to approve */
  count: number;
  redis: Redis;
  prefix: string;
  logger: Logger;
  defaultProviderUrl?: string;
  /** who approves, for the audit trail (e.g. the approver's name or e-mail) */
  approvedBy?: string;
  /** SCAL2: told how many waiting documents the approval binds, their digest, and how many wait */
  onDocuments?: (count: number, digest: string, waiting: number) => void;
  /** At a prompt, for an online OTP: told once the provider was asked to send the code (sendOTP) */
  onOtpSent?: () => void;
  env?: NodeJS.ProcessEnv;
}

export interface ApprovalResult {
  tenant: string;
  credentialId: string;
  via: 'oauth2code' | 'prompt';
  numSignatures: number;
  expiresAt: number;
  fingerprint: string;
  /** who approved, as recorded in the audit trail (--approver, else what the provider reported) */
  approvedBy?: string;
  /** signatures the approval it replaced had left unused */
  replacedUnused: number;
  /** SCAL2: SHA-256 over the approved document hashes, in order (what the approver was shown) */
  documentsDigest?: string;
}

/** Hashes per approval on the provider's page: each is ~60 characters of the URL. */
const MAX_HASHES_IN_URL = 150;

/**
 * SCAL2: the approval binds the hashes of the documents waiting for it (prepared by the night's
 * workers, which then wait): up to --count of them, in a stable order. The caller is told the count and
 * the digest of the list before anything is signed, as the approver sees them on the provider's page.
 */
async function waitingHashes(o: ApproveOptions): Promise<Buffer[]> {
  const { tenant } = o.job;
  const { credentialId } = o.job.signing;
  const pending = await new ParkedApprovals(o.redis, o.prefix).pending(tenant, credentialId);
  if (pending.length === 0) {
    throw new JobConfigError(
      `credential ${credentialId} is SCAL2: an approval binds the documents' hashes, and none waits yet; run the night first (its invoices wait for approval), then approve`,
    );
  }
  const hashes = pending.slice(0, o.count).map((p) => p.hash);
  o.onDocuments?.(hashes.length, hashListDigest(hashes), pending.length);
  return hashes;
}

/** The one job definition that names how `tenant`'s approvals are given (or a clear error). */
export function approvalJobOf(jobs: JobDefinition[], tenant: string, credentialId?: string): JobDefinition {
  const mine = jobs.filter(
    (j) =>
      j.tenant === tenant &&
      j.signing.custody.mode === 'approval' &&
      (credentialId === undefined || j.signing.credentialId === credentialId),
  );
  const credentials = [...new Set(mine.map((j) => j.signing.credentialId))];
  if (credentials.length === 0) {
    throw new JobConfigError(
      `no job definition of tenant ${tenant}${credentialId ? ` with credential ${credentialId}` : ''} uses custody approval`,
    );
  }
  if (credentials.length > 1) {
    throw new JobConfigError(
      `tenant ${tenant} approves for several credentials (${credentials.join(', ')}): name one with --credential`,
    );
  }
  return mine[0]!;
}

async function clientFor(o: ApproveOptions): Promise<CscClient> {
  const env = o.env ?? process.env;
  const baseUrl = o.job.signing.providerUrl ?? o.defaultProviderUrl;
  if (!baseUrl) {
    throw new JobConfigError(
      `job ${o.job.name}: signing.providerUrl is not set and neither is SEALER_PROVIDER_URL`,
    );
  }
  return new CscClient({
    baseUrl,
    apiVersion: apiVersionOf(o.job.signing.apiVersion, baseUrl),
    auth: await serviceAuthOf(o.job, env),
    caPem: await providerCaOf(o.job),
    logger: o.logger,
  });
}

function checkCount(o: ApproveOptions, multisign: number): void {
  if (!Number.isInteger(o.count) || o.count < 1)
    throw new JobConfigError(`--count ${o.count} is not a count`);
  if (o.count > multisign) {
    throw new JobConfigError(
      `credential ${o.job.signing.credentialId} allows at most ${multisign} signatures per authorisation (multisign); asked for ${o.count}`,
    );
  }
  const cap = o.job.signing.maxSignaturesPerAuthorisation;
  if (cap !== undefined && o.count > cap) {
    throw new JobConfigError(
      `job ${o.job.name} caps an authorisation at ${cap} signatures (maxSignaturesPerAuthorisation); asked for ${o.count}`,
    );
  }
}

/**
 * Approval at a prompt: `ask` is called for the PIN and the OTP (whichever the credential needs); they
 * go to credentials/authorize once and are not kept. An online OTP (not a TOTP) is first sent to the
 * approver by the provider (credentials/sendOTP, once), then asked for.
 */
export async function approveAtPrompt(
  o: ApproveOptions & { ask: (factor: 'PIN' | 'OTP') => Promise<string> },
): Promise<ApprovalResult> {
  const client = await clientFor(o);
  const credentialId = o.job.signing.credentialId;
  const facts = await client.credentialInfo(credentialId);
  checkCount(o, facts.multisign);
  const hashes = facts.scal === 2 ? await waitingHashes(o) : undefined;
  const numSignatures = hashes?.length ?? o.count;
  let pin = facts.factors.includes('PIN') ? await o.ask('PIN') : undefined;
  if (facts.factors.includes('OTP') && facts.otpGenerator === 'other') {
    await client.sendOtp(credentialId);
    o.onOtpSent?.();
  }
  let otp = facts.factors.includes('OTP') ? await o.ask('OTP') : undefined;
  const got = await client.authorize({ credentialId, numSignatures, pin, otp, hashes }).finally(() => {
    pin = otp = undefined;
  });
  return park(o, 'sad', got.sad, got.expiresAt, 'prompt', numSignatures, hashes);
}

/**
 * Approval on the provider's page: `showUrl` gets the URL the approver must open; resolves once the
 * browser came back to a loopback listener and the code was exchanged for a credential-scope token.
 */
export async function approveOnProviderPage(
  o: ApproveOptions & { showUrl: (url: string) => void; timeoutMs?: number },
): Promise<ApprovalResult> {
  const env = o.env ?? process.env;
  const client = await clientFor(o);
  const credentialId = o.job.signing.credentialId;
  if (client.apiVersion === 'v1') {
    throw new JobConfigError(
      `job ${o.job.name}: the provider speaks CSC v1, whose signHash takes no credential-scope token; approve with --prompt`,
    );
  }
  const facts = await client.credentialInfo(credentialId);
  checkCount(o, facts.multisign);
  const hashes = facts.scal === 2 ? await waitingHashes(o) : undefined;
  // Every hash travels in the page's URL (as base64 in authorization_details): keep it a sane size.
  if (hashes && hashes.length > MAX_HASHES_IN_URL) {
    throw new JobConfigError(
      `${hashes.length} documents would be approved at once; the provider page takes at most ${MAX_HASHES_IN_URL} per approval: run with --count ${MAX_HASHES_IN_URL} several times, or --prompt`,
    );
  }
  const ref = o.job.signing.clientSecret;
  if (ref === undefined) {
    throw new JobConfigError(`job ${o.job.name}: the authorization code flow needs signing.clientSecret`);
  }
  const clientId = o.job.signing.clientId;
  if (clientId === undefined) {
    throw new JobConfigError(`job ${o.job.name}: the authorization code flow needs signing.clientId`);
  }
  const info = await client.info();
  const oauth2Base = info.oauth2 ?? new URL(client.baseUrl).origin;
  const redirect = await startLoopbackRedirect({ timeoutMs: o.timeoutMs });
  try {
    o.showUrl(
      buildAuthorizationUrl({
        oauth2Base,
        clientId,
        redirectUri: redirect.redirectUri,
        credentialId,
        numSignatures: hashes?.length ?? o.count,
        hashes,
        state: redirect.state,
        codeChallenge: pkceChallenge(redirect.codeVerifier),
      }),
    );
    const code = await redirect.code;
    const token = await exchangeCode({
      tokenUrl: await client.tokenUrl(),
      clientId,
      clientSecret: await resolveSecret(ref, o.job.baseDir, env),
      code,
      codeVerifier: redirect.codeVerifier,
      redirectUri: redirect.redirectUri,
      caPem: await providerCaOf(o.job),
      numSignatures: hashes?.length ?? o.count,
      credentialId,
    });
    // Who approved: as the command was told, else as the provider's page reports.
    return park(
      { ...o, approvedBy: o.approvedBy ?? token.approvedBy },
      'credential-token',
      token.token,
      token.expiresAt,
      'oauth2code',
      token.numSignatures,
      hashes,
    );
  } finally {
    await redirect.close();
  }
}

export interface ApproveRequest extends Omit<ApproveOptions, 'job'> {
  /** the job definitions, among which one names how the tenant's approvals are given */
  jobs: JobDefinition[];
  tenant: string;
  /** needed only when the tenant approves for several credentials */
  credential?: string;
  /** at a prompt (true) or on the provider's page (false); default as the job's custody.via says */
  prompt?: boolean;
  /** on the provider's page: how long to wait for the browser to come back */
  timeoutMs?: number;
  /** opened only for an approval at a prompt, and closed once it is parked or has failed */
  openPrompt: () => { ask: (factor: 'PIN' | 'OTP') => Promise<string>; close: () => void };
  /** on the provider's page: the URL the approver must open */
  showUrl: (url: string) => void;
}

/** `sealer approve`: finds the tenant's approval job and approves at a prompt or on the provider's page. */
export async function approve(o: ApproveRequest): Promise<ApprovalResult> {
  const { jobs, tenant, credential, prompt, timeoutMs, openPrompt, showUrl, ...rest } = o;
  const job = approvalJobOf(jobs, tenant, credential);
  const viaPrompt =
    prompt ?? (job.signing.custody.mode === 'approval' && job.signing.custody.via === 'prompt');
  if (!viaPrompt) return approveOnProviderPage({ ...rest, job, timeoutMs, showUrl });
  const reader = openPrompt();
  try {
    return await approveAtPrompt({ ...rest, job, ask: reader.ask });
  } finally {
    reader.close();
  }
}

async function park(
  o: ApproveOptions,
  kind: ApprovalKind,
  value: string,
  expiresAt: number,
  via: 'oauth2code' | 'prompt',
  granted = o.count,
  hashes?: Buffer[],
): Promise<ApprovalResult> {
  const custody = o.job.signing.custody;
  if (custody.mode !== 'approval')
    throw new JobConfigError(`job ${o.job.name} does not use custody approval`);
  const kek = await loadKek(custody.kek, o.job.baseDir, o.env ?? process.env);
  const { tenant } = o.job;
  const { credentialId } = o.job.signing;
  const parked = new ParkedApprovals(o.redis, o.prefix);
  const { replacedUnused } = await parked.park(
    {
      tenant,
      credentialId,
      kind,
      value,
      numSignatures: granted,
      expiresAt,
      via,
      approvedBy: o.approvedBy,
      hashes,
    },
    kek,
  );
  // A new approval is a person's fresh word on this credential: workers stopped by a refusal go on.
  await clearCredentialLatch(o.redis, o.prefix, { tenant, credentialId });
  const fingerprint = secretFingerprint(value);
  await AuditLog.forTenant(o.job.outboxRoot, tenant).append({
    type: 'authorisation',
    custody: `approval (${via})`,
    ...(o.approvedBy ? { approvedBy: o.approvedBy } : {}),
    credentialId,
    numSignatures: granted,
    expiresAt: new Date(expiresAt).toISOString(),
    sadFingerprint: fingerprint,
    scal: hashes ? 'SCAL2' : 'SCAL1',
  });
  o.logger.info(
    {
      tenant,
      credentialId,
      via,
      numSignatures: granted,
      expiresAt: new Date(expiresAt).toISOString(),
      fingerprint,
    },
    'approval parked',
  );
  return {
    tenant,
    credentialId,
    via,
    numSignatures: granted,
    expiresAt,
    fingerprint,
    ...(o.approvedBy ? { approvedBy: o.approvedBy } : {}),
    replacedUnused,
    ...(hashes ? { documentsDigest: hashListDigest(hashes) } : {}),
  };
}

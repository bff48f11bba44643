// What a job's `signing.custody` means to a worker: the key factors it may authorise with (from secret
// references, decrypted from the vault, or none for an implicit credential), or, under custody
// `approval`, the approvals the tenant parked, drawn through csc's ApprovalSource seam and each draw
// recorded in the audit trail. Also the local check a worker makes before it takes jobs.
import type { ApprovalSource, Drawn, KeyFactors } from '../csc';
import { JobConfigError, resolveSecret, type JobDefinition } from '../jobs';
import type { AuditEntryInput } from '../outbox';
import { keyFactorsOf, loadKek, openFactorVault } from './factor-vault';
import type { ParkedApprovals } from './parked-approvals';

/** The key factors, by custody: from secret references, or decrypted from the vault in memory. */
export async function keyFactorsFor(job: JobDefinition, env: NodeJS.ProcessEnv): Promise<KeyFactors> {
  const { custody, pin, totpSecret, totp } = job.signing;
  const settings = { totpDigits: totp.digits, totpPeriod: totp.periodSec, totpAlgorithm: totp.algorithm };
  switch (custody.mode) {
    case 'secret-refs':
      return {
        pin: pin ? await resolveSecret(pin, job.baseDir, env) : undefined,
        totpSecret: totpSecret ? await resolveSecret(totpSecret, job.baseDir, env) : undefined,
        ...settings,
      };
    case 'provider-held': {
      const vault = await openFactorVault(job, env);
      return keyFactorsOf(await vault.read(job.tenant, job.signing.credentialId));
    }
    case 'implicit':
      return settings;
    case 'approval':
      throw new JobConfigError(
        `job ${job.name}: tenant ${job.tenant} keeps its factors (custody approval); the worker never authorises with them`,
      );
  }
}

/**
 * Every secret reference the job's custody needs resolves, the key-encryption key loads, and stored
 * factors decrypt; throws the first problem. Decrypted values are dropped at once.
 */
export async function checkCustody(job: JobDefinition, env: NodeJS.ProcessEnv): Promise<void> {
  const { pin, totpSecret, custody } = job.signing;
  for (const ref of [pin, totpSecret]) if (ref) await resolveSecret(ref, job.baseDir, env);
  if (custody.mode === 'approval') await loadKek(custody.kek, job.baseDir, env);
  // Decrypting once proves the key and the file match.
  if (custody.mode === 'provider-held') {
    await (await openFactorVault(job, env)).read(job.tenant, job.signing.credentialId);
  }
}

/**
 * Under custody `approval`, the source a SAD manager draws the tenant's parked approvals from (bound to
 * the job's tenant, credential and key); undefined under any other custody. `record` is told of every
 * draw (fingerprint only) and of an approval the provider refused.
 */
export async function approvalSourceFor(
  job: JobDefinition,
  parked: ParkedApprovals | undefined,
  env: NodeJS.ProcessEnv,
  record: (entry: AuditEntryInput) => void,
): Promise<ApprovalSource | undefined> {
  const custody = job.signing.custody;
  if (custody.mode !== 'approval') return undefined;
  if (!parked) throw new JobConfigError(`job ${job.name}: custody approval needs the approvals store`);
  const kek = await loadKek(custody.kek, job.baseDir, env);
  const { tenant } = job;
  const { credentialId } = job.signing;
  const recorded = (drawn: Drawn): Drawn => {
    record({
      type: 'approval-drawn',
      credentialId,
      sadFingerprint: drawn.fingerprint,
      count: drawn.count,
      remaining: drawn.remaining,
    });
    return drawn;
  };
  return {
    draw: async (wanted, marginMs) =>
      recorded(await parked.draw(tenant, credentialId, wanted, kek, marginMs)),
    drawBound: async (hashes, marginMs) =>
      recorded(await parked.drawBound(tenant, credentialId, hashes, kek, marginMs)),
    retire: async (fingerprint) => {
      if (await parked.retire(tenant, credentialId, fingerprint)) {
        record({
          type: 'refusal',
          credentialId,
          reason: `the provider refused the parked approval ${fingerprint} (spent or expired on its side); invoices wait for a new approval`,
        });
      }
    },
  };
}

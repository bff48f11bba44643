// The BullMQ queue `renew` and its worker: one job per delivered file to renew. A job re-reads the
// file and its latest manifest row, renews it through the seal part (fresh validation data and a new
// document timestamp from the tenant's job TSA), replaces the file atomically (the new bytes start
// with the old), then writes the audit entry and the manifest row, in that order: a retry after a
// crash finds a file that starts with its manifest row's file and only finishes the bookkeeping, never
// timestamping twice. TSA or responder trouble is retried with backoff; a file that fails a check is
// failed at once and left as it was.
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  Queue,
  UnrecoverableError,
  Worker,
  type ConnectionOptions,
  type Job,
  type JobsOptions,
} from 'bullmq';
import {
  AuditLog,
  OutboxConflictError,
  appendManifestRow,
  latestManifestRows,
  replaceWithGrown,
  type ManifestRow,
} from '../outbox';
import { extractSignatures } from '../pdf';
import {
  CertificateUnusableError,
  ChainError,
  SUBFILTER_ETSI_RFC3161,
  readTimestampToken,
  verifySealedPdf,
} from '../pades';
import { ArchiveRenewer, RenewalRefusedError, assessRenewal } from '../seal';
import { JobConfigError, type JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { archiveSpecs, TenantArchives, type ArchiveIndex } from '../archive';
import { SigningContexts, trustRootsOf } from './signing-contexts';
import { prefixEndingWith, sha256Hex } from './renew-plan';
import { WORKER_ARCHIVE_CACHE_MIB } from './worker-defaults';

export const RENEW_QUEUE = 'renew';

export const RENEW_JOB_OPTIONS: JobsOptions = {
  /** A TSA or OCSP responder down for a while: retried over about five minutes, like a seal job. */
  attempts: 6,
  backoff: { type: 'exponential', delay: 10_000, jitter: 0.3 },
  /** A renewal pass reads its jobs' results as they complete (run-renewal.ts): a day is plenty for a
   * pass in another process to read them too, and no history is kept in Redis (the manifest and the
   * audit trail are the record of what was renewed). */
  removeOnComplete: { age: 24 * 3600 },
  removeOnFail: { age: 30 * 24 * 3600, count: 100_000 },
  stackTraceLimit: 1,
};

export interface RenewJobData {
  tenant: string;
  /** the job definition whose TSA and trust roots serve the tenant */
  jobName: string;
  /** the run-date folder of the file and its manifest */
  dir: string;
  invoiceNumber: string;
  file: string;
  /** SHA-256 of the file when it was planned (its manifest row's) */
  sealedSha256: string;
  /** why it was planned */
  reason: string;
  withinMs: number;
}

export interface RenewJobResult {
  outcome: 'renewed' | 'finished' | 'skipped';
  reason: string;
  newSealedSha256?: string;
  documentTimestampTime?: string;
  tsa?: string;
}

/** One job per file and digest: a re-run after a renewal sees the new digest, a new ID. */
export function renewJobId(data: Pick<RenewJobData, 'tenant' | 'invoiceNumber' | 'sealedSha256'>): string {
  return `${data.tenant}|${data.invoiceNumber}|${data.sealedSha256}`;
}

export function openRenewQueue(
  connection: ConnectionOptions,
  prefix: string,
  jobOptions: JobsOptions = RENEW_JOB_OPTIONS,
): Queue<RenewJobData> {
  return new Queue<RenewJobData>(RENEW_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: { ...RENEW_JOB_OPTIONS, ...jobOptions },
  });
}

export interface RenewWorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  jobs: JobDefinition[];
  logger: Logger;
  /** files renewed at once; default 4 (each holds a file in memory and one TSA request) */
  concurrency?: number;
  defaultProviderUrl?: string;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
  /** the searchable archive whose rows follow renewals; default as the seal worker's */
  archive?: ArchiveIndex;
}

/** Errors a retry cannot cure: the file or the job definition is wrong, not the network. */
function permanent(err: unknown): boolean {
  return (
    err instanceof RenewalRefusedError ||
    err instanceof OutboxConflictError ||
    err instanceof JobConfigError ||
    err instanceof ChainError ||
    err instanceof CertificateUnusableError
  );
}

export class RenewWorker {
  readonly worker: Worker<RenewJobData, RenewJobResult>;
  readonly contexts: SigningContexts;
  private readonly jobsByName: Map<string, JobDefinition>;
  private readonly renewers = new Map<string, Promise<ArchiveRenewer>>();
  private readonly now: () => Date;
  private readonly archive: ArchiveIndex;

  constructor(private readonly options: RenewWorkerOptions) {
    this.jobsByName = new Map(options.jobs.map((j) => [j.name, j]));
    this.archive =
      options.archive ??
      new TenantArchives(archiveSpecs(options.jobs, options.env), { cacheMiB: WORKER_ARCHIVE_CACHE_MIB });
    this.now = options.now ?? (() => new Date());
    this.contexts = new SigningContexts({
      logger: options.logger,
      defaultProviderUrl: options.defaultProviderUrl,
      env: options.env,
      now: options.now,
    });
    this.worker = new Worker<RenewJobData, RenewJobResult>(RENEW_QUEUE, (job) => this.process(job), {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency ?? 4,
      autorun: false,
    });
    this.worker.on('error', (err) => options.logger.warn({ err: err.message }, 'renew worker error'));
  }

  run(): Promise<void> {
    return this.worker.run();
  }

  async close(): Promise<void> {
    await this.worker.close();
    await this.contexts.close();
    if (this.options.archive === undefined) await this.archive.close();
  }

  private async process(job: Job<RenewJobData, RenewJobResult>): Promise<RenewJobResult> {
    const log = this.options.logger.child({ tenant: job.data.tenant, invoice: job.data.invoiceNumber });
    try {
      const result = await this.renewOne(job.data);
      log.info({ outcome: result.outcome, reason: result.reason }, 'renew job done');
      return result;
    } catch (err) {
      const message = (err as Error).message;
      log.warn({ err: message, attempt: job.attemptsMade + 1 }, 'renew job failed');
      if (permanent(err)) throw new UnrecoverableError(message);
      throw err;
    }
  }

  private async renewOne(d: RenewJobData): Promise<RenewJobResult> {
    const def = this.jobsByName.get(d.jobName);
    if (!def) throw new JobConfigError(`job definition ${d.jobName} is not loaded in this worker`);
    const row = (await latestManifestRows(d.dir)).get(d.invoiceNumber);
    if (!row) throw new RenewalRefusedError(`invoice ${d.invoiceNumber} has no manifest row in ${d.dir}`);
    const bytes = await fs.readFile(d.file);
    const current = sha256Hex(bytes);
    const roots = await trustRootsOf(def);

    if (current !== row.sealedSha256) {
      // Renewed and renamed, then the process stopped before the manifest row: finish, do not renew again.
      if (prefixEndingWith(bytes, row.sealedSha256) === undefined) {
        throw new RenewalRefusedError(
          `${d.file} does not match its manifest row and does not contain that file: changed outside the sealer`,
        );
      }
      return { outcome: 'finished', ...(await this.bookkeep(def, d, row, bytes, current, roots)) };
    }
    if (current !== d.sealedSha256) {
      return { outcome: 'skipped', reason: 'renewed since it was planned' };
    }
    const decision = await assessRenewal(bytes, {
      trustedRootsDer: roots,
      withinMs: d.withinMs,
      now: this.now(),
    });
    if (decision.action !== 'renew') return { outcome: 'skipped', reason: decision.reason };

    const renewer = await this.renewerFor(def);
    const { renewed } = await renewer.renew(bytes);
    await replaceWithGrown(d.file, renewed, current);
    return { outcome: 'renewed', ...(await this.bookkeep(def, d, row, renewed, sha256Hex(renewed), roots)) };
  }

  /** Audit entry (unless a crashed attempt wrote it), then the manifest row with the new digest and level. */
  private async bookkeep(
    def: JobDefinition,
    d: RenewJobData,
    row: ManifestRow,
    renewed: Buffer,
    newSha256: string,
    roots: Buffer[],
  ): Promise<Omit<RenewJobResult, 'outcome'>> {
    const stamp = extractSignatures(renewed)
      .filter((s) => s.subFilter === SUBFILTER_ETSI_RFC3161)
      .at(-1);
    if (!stamp) throw new RenewalRefusedError(`${d.file} has no document timestamp after renewal`);
    const token = readTimestampToken(stamp.cmsDer);
    const documentTimestampTime = token.genTime.toISOString();
    const tsa = token.tsaSubject ?? 'unknown TSA';
    const audit = AuditLog.forTenant(def.outboxRoot, d.tenant);
    if (!(await audit.hasRenewal(d.invoiceNumber, newSha256))) {
      await audit.append({
        type: 'renewal',
        invoice: d.invoiceNumber,
        file: path.relative(path.join(def.outboxRoot, d.tenant), d.file),
        oldSealedSha256: row.sealedSha256,
        newSealedSha256: newSha256,
        reason: d.reason,
        documentTimestampTime,
        tsa,
      });
    }
    const checks = await verifySealedPdf(renewed, { trustedRootsDer: roots, at: this.now() });
    // Our seal is the last signature (an input may carry others before it).
    const sig = checks.filter((c) => c.kind === 'signature').at(-1);
    const level = sig?.level ?? row.level;
    // The archive row first: were it written after the manifest row and failed, the retry would find
    // the file already renewed and the archive would keep the old digest. A retry (the "finished" path)
    // writes both again; both are idempotent.
    const known = (await this.archive.find(d.tenant, d.invoiceNumber)).find(
      (r) => r.sourceSha256 === row.sourceSha256,
    );
    const amount = Number(row.amount);
    const timestampAt = sig?.signatureTimestamp?.genTime?.toISOString() ?? known?.timestampAt;
    await this.archive.record({
      tenant: d.tenant,
      invoiceNumber: d.invoiceNumber,
      customer: known?.customer ?? row.customer ?? '',
      amount: known?.amount ?? (row.amount && Number.isSafeInteger(amount) ? amount : 0),
      ...((known?.issueDate ?? row.issueDate) ? { issueDate: known?.issueDate ?? row.issueDate } : {}),
      ...((known?.registrationNumber ?? row.registrationNumber)
        ? { registrationNumber: known?.registrationNumber ?? row.registrationNumber }
        : {}),
      file: d.file,
      sealedSha256: newSha256,
      sourceSha256: row.sourceSha256,
      level: level || known?.level || 'B-LTA',
      sealedAt: known?.sealedAt ?? row.signingTime,
      certificateSerial: row.certificateSerial,
      ...(timestampAt ? { timestampAt } : {}),
      job: row.job,
      runId: known?.runId ?? row.runId,
    });
    await appendManifestRow(d.dir, { ...row, sealedSha256: newSha256, level, status: 'renewed' });
    return { reason: d.reason, newSealedSha256: newSha256, documentTimestampTime, tsa };
  }

  /** One renewer per job definition, started once (the TSA probed); a failed start is not kept. */
  private renewerFor(def: JobDefinition): Promise<ArchiveRenewer> {
    let renewer = this.renewers.get(def.name);
    if (!renewer) {
      renewer = (async () => {
        const r = new ArchiveRenewer({
          trustRootsDer: await trustRootsOf(def),
          timestamps: await this.contexts.timestampSourceFor(def),
          revocation: this.contexts.revocation(),
          now: this.now,
        });
        await r.start();
        return r;
      })().catch((err: unknown) => {
        this.renewers.delete(def.name);
        throw err;
      });
      this.renewers.set(def.name, renewer);
    }
    return renewer;
  }
}

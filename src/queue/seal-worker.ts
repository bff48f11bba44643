// The BullMQ worker that seals one invoice per job: prepare (thread pool) → sign (batched through the
// credential's BatchSigner) → finish (CMS, embed, verify) → deliver (atomic write, manifest).
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DelayedError, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { embedCms } from '../pdf';
import { verifyCms, verifySealedPdf } from '../pades';
import { ApprovalNeededError, AwaitingBoundApproval, CscError, ParkedApprovals } from '../csc';
import { JobConfigError } from '../jobs';
import {
  AuditLog,
  type AuditEntryInput,
  appendManifestRow,
  checkExistingSeal,
  findSealed,
  manifestHasRow,
  recordSealed,
  sealedFilePath,
  writeNew,
} from '../outbox';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { SealerError } from '../common/errors';
import { PreparePool } from './prepare-pool';
import { SigningContexts, type SigningContext } from './signing-contexts';
import { SEAL_QUEUE, type SealJobData, type SealJobResult } from './seal-job';
import { addRunCounts, markAwaiting, runKey, settleRun } from './run-record';

export class SealError extends SealerError {}

function isInside(folder: string, file: string): boolean {
  const rel = path.relative(folder, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * What a failure means for the job: a provider refusal that will not change by waiting (wrong PIN,
 * bad request, unknown credential) or a configuration error fails it at once; anything else
 * (timeouts, 429, 5xx, network) is retried with BullMQ's backoff.
 */
function fateOf(err: unknown, context: string): Error {
  const message = `${context}: ${err instanceof Error ? err.message : String(err)}`;
  if ((err instanceof CscError && !err.retryable) || err instanceof JobConfigError) {
    return new UnrecoverableError(message);
  }
  return new SealError(message, { cause: err });
}

export interface SealWorkerOptions {
  connection: ConnectionOptions;
  /** for run records */
  redis: Redis;
  prefix: string;
  jobs: JobDefinition[];
  logger: Logger;
  /** jobs processed at once; should be at least 2 × batchSize so batches fill. Default 64. */
  concurrency?: number;
  /** prepare threads; default: one per core */
  threads?: number;
  defaultProviderUrl?: string;
  /** flush a partial signHash batch when no hash arrived for this long (ms). Default 200: a night is
   * not latency-bound, and fuller batches mean fewer provider calls. */
  batchMaxWaitMs?: number;
  /** ...and at the latest this long after a partial batch's oldest hash arrived. Default 500. */
  batchMaxDelayMs?: number;
  /** bytes reserved for the CMS in each placeholder. Default: the credential's largest CMS, rounded up. */
  signatureBytes?: number;
  /** how long an invoice waits before it looks again for a tenant's approval (ms). Default 30000. */
  approvalPollMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface SealedEvent {
  data: SealJobData;
  result: SealJobResult;
}

export class SealWorker {
  readonly worker: Worker<SealJobData, SealJobResult>;
  readonly contexts: SigningContexts;
  private readonly pool: PreparePool;
  private readonly approvals: ParkedApprovals;
  private readonly jobsByName: Map<string, JobDefinition>;

  constructor(private readonly options: SealWorkerOptions) {
    this.jobsByName = new Map(options.jobs.map((j) => [j.name, j]));
    this.pool = new PreparePool({ threads: options.threads });
    this.approvals = new ParkedApprovals(options.redis, options.prefix);
    this.contexts = new SigningContexts({
      logger: options.logger,
      defaultProviderUrl: options.defaultProviderUrl,
      batchMaxWaitMs: options.batchMaxWaitMs ?? 200,
      batchMaxDelayMs: options.batchMaxDelayMs,
      approvals: this.approvals,
      env: options.env,
    });
    this.worker = new Worker<SealJobData, SealJobResult>(
      SEAL_QUEUE,
      (job, token) => this.process(job, token),
      {
        connection: options.connection,
        prefix: options.prefix,
        concurrency: options.concurrency ?? 64,
        autorun: false,
      },
    );
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      this.options.logger.warn(
        {
          tenant: job.data.tenant,
          invoice: job.data.invoiceNumber,
          attempt: job.attemptsMade,
          final,
          reason: err.message,
        },
        'seal failed',
      );
      if (final) {
        // The refusal goes into the audit trail of the credential's tenant and, for a job naming
        // another tenant (a forgery or a mix-up), into that tenant's too.
        const def = this.jobsByName.get(job.data.jobName);
        const named = [...this.jobsByName.values()].find((j) => j.tenant === job.data.tenant);
        for (const owner of new Set([def, named])) {
          if (!owner) continue;
          void this.audit(owner, {
            type: 'refusal',
            invoice: job.data.invoiceNumber,
            credentialId: def?.signing.credentialId,
            reason: err.message,
          });
        }
        void markAwaiting(this.options.redis, this.options.prefix, job.data.runId, job.id ?? '', false);
        if (job.data.pendingHash && def) {
          void this.approvals.removePending(
            job.data.tenant,
            def.signing.credentialId,
            Buffer.from(job.data.pendingHash, 'hex'),
          );
        }
        void this.options.redis
          .rpush(
            `${runKey(this.options.prefix, job.data.runId)}:failures`,
            JSON.stringify({ invoice: job.data.invoiceNumber, line: job.data.line, reason: err.message }),
          )
          .then(() => this.count(job.data.runId, { failed: 1 }));
      }
    });
    this.worker.on('error', (err) => this.options.logger.error({ err }, 'worker error'));
  }

  private async count(runId: string, counts: Parameters<typeof addRunCounts>[3]): Promise<void> {
    try {
      await addRunCounts(this.options.redis, this.options.prefix, runId, counts);
      const settled = await settleRun(this.options.redis, this.options.prefix, runId);
      if (settled) this.options.logger.info({ runId, ...settled }, 'run settled');
    } catch (err) {
      this.options.logger.error({ err, runId }, 'cannot update run record');
    }
  }

  /** Appends to the tenant's audit trail; a failure to write is logged, never thrown. */
  private async audit(def: JobDefinition, entry: AuditEntryInput): Promise<void> {
    try {
      await AuditLog.forTenant(def.outboxRoot, def.tenant).append(entry);
    } catch (err) {
      this.options.logger.error(
        { tenant: def.tenant, type: entry.type, err: (err as Error).message },
        'audit entry not written',
      );
    }
  }

  /** Starts taking jobs; resolves when the worker is closed. */
  run(): Promise<void> {
    return this.worker.run();
  }

  private jobDefinition(data: SealJobData, realSource?: string): JobDefinition {
    const def = this.jobsByName.get(data.jobName);
    if (!def)
      throw new UnrecoverableError(`invoice ${data.invoiceNumber}: no job definition named ${data.jobName}`);
    // Tenant isolation, checked before any provider call: a job is sealed only with its own tenant's
    // profile, never from another tenant's export folder or from any outbox. (A source elsewhere is
    // allowed: `sealer enqueue --file` reads exports from any folder.) Symbolic links are resolved by
    // the caller (see deliver) so a link cannot smuggle another tenant's file in.
    if (def.tenant !== data.tenant) {
      throw new UnrecoverableError(
        `invoice ${data.invoiceNumber}: job names tenant ${data.tenant} but job definition ${def.name} belongs to ${def.tenant}`,
      );
    }
    const sources = [path.resolve(data.sourcePath), ...(realSource ? [realSource] : [])];
    for (const other of this.jobsByName.values()) {
      const foreign = sources.some(
        (source) =>
          (other.tenant !== def.tenant && isInside(other.exportFolder, source)) ||
          isInside(other.outboxRoot, source),
      );
      if (foreign) {
        throw new UnrecoverableError(
          `invoice ${data.invoiceNumber}: source ${data.sourcePath} lies in ${other.tenant !== def.tenant ? `tenant ${other.tenant}'s export folder or outbox` : 'an outbox'}; tenant ${def.tenant} may not seal it`,
        );
      }
    }
    return def;
  }

  async process(job: Job<SealJobData, SealJobResult>, token?: string): Promise<SealJobResult> {
    let result: SealJobResult;
    try {
      result = await this.deliver(job.data);
    } catch (err) {
      if (!(err instanceof ApprovalNeededError)) throw err;
      // Not a failure: the invoice waits (delayed, no attempt spent) until the tenant approves more.
      const { redis, prefix, logger } = this.options;
      if (err instanceof AwaitingBoundApproval) {
        // SCAL2: the approver must see this hash; keep what makes the next preparation identical.
        await job.updateData({
          ...job.data,
          signingTime: err.signingTime,
          pendingHash: err.hash.toString('hex'),
        });
        await this.approvals.addPending(err.tenant, err.credentialId, {
          hash: err.hash,
          jobId: job.id ?? '',
          invoice: job.data.invoiceNumber,
        });
      }
      const first = await markAwaiting(redis, prefix, job.data.runId, job.id ?? '', true);
      if (first) {
        logger.info(
          { tenant: job.data.tenant, invoice: job.data.invoiceNumber, reason: err.reason },
          'awaiting approval',
        );
      }
      await job.moveToDelayed(Date.now() + (this.options.approvalPollMs ?? 30_000), token);
      throw new DelayedError();
    }
    await markAwaiting(this.options.redis, this.options.prefix, job.data.runId, job.id ?? '', false);
    // Counted here, not in a 'completed' listener, so a crash cannot leave a run that never settles
    // (a crash after this line re-runs the job, which then counts as already sealed: over, not under).
    await this.count(job.data.runId, result.status === 'sealed' ? { sealed: 1 } : { alreadySealed: 1 });
    return result;
  }

  private async deliver(data: SealJobData): Promise<SealJobResult> {
    // Where the source really is, through any symbolic link; a missing file fails later, in prepare.
    const real = await fs.realpath(data.sourcePath).catch(() => undefined);
    const def = this.jobDefinition(data, real);
    const root = def.outboxRoot;
    let target: string;
    try {
      target = sealedFilePath(root, data.tenant, data.runDate, data.invoiceNumber);
    } catch (err) {
      throw new UnrecoverableError((err as Error).message);
    }
    // Sealed before, on any run date: deliver nothing new and spend no signature.
    const earlier = await findSealed(root, data.tenant, data.invoiceNumber, data.sourceSha256);
    if (earlier) return { status: 'already-sealed', file: earlier };
    const existing = await checkExistingSeal(target, data.sourceSha256, data.sourceLength);
    if (existing === 'same-source') return this.completeEarlierDelivery(data, target);
    if (existing === 'different') {
      throw new UnrecoverableError(
        `invoice ${data.invoiceNumber}: ${target} already holds a different sealed document; not overwriting`,
      );
    }
    let context: SigningContext;
    try {
      context = await this.contexts.get(def);
    } catch (err) {
      throw fateOf(err, `invoice ${data.invoiceNumber}: cannot reach credential ${def.signing.credentialId}`);
    }
    return this.seal(data, def, context, target);
  }

  /** A crash between writing the sealed file and recording it left the manifest row or the index
   * missing: check the file and add what is missing, without sealing again. */
  private async completeEarlierDelivery(data: SealJobData, target: string): Promise<SealJobResult> {
    const def = this.jobDefinition(data);
    const sealed = await fs.readFile(target);
    const checks = await verifySealedPdf(sealed);
    const last = checks[checks.length - 1];
    if (!last?.valid || !last.coversWholeDocument) {
      throw new UnrecoverableError(
        `invoice ${data.invoiceNumber}: ${target} exists but is not a valid seal of this source; not overwriting`,
      );
    }
    const sealedSha256 = crypto.createHash('sha256').update(sealed).digest('hex');
    if (!(await manifestHasRow(path.dirname(target), data.invoiceNumber, sealedSha256))) {
      await appendManifestRow(path.dirname(target), {
        invoiceNumber: data.invoiceNumber,
        file: path.basename(target),
        sealedSha256,
        sourceSha256: data.sourceSha256,
        signingTime: (await fs.stat(target)).mtime.toISOString(),
        certificateSerial: last.certificateSerialHex ?? '',
        job: data.jobName,
        runId: data.runId,
      });
      this.options.logger.warn(
        { invoice: data.invoiceNumber, file: target },
        'manifest row restored after an interrupted delivery',
      );
    }
    await recordSealed(def.outboxRoot, data.tenant, data.invoiceNumber, data.sourceSha256, target);
    return { status: 'already-sealed', file: target, sealedSha256 };
  }

  private async seal(
    data: SealJobData,
    def: JobDefinition,
    ctx: SigningContext,
    target: string,
  ): Promise<SealJobResult> {
    // Waiting for an approval: look before preparing (a night may hold thousands of waiting invoices,
    // each looking again every poll). A SCAL2 document is prepared once to learn its hash.
    if (ctx.sadManager.approvalBased && (ctx.facts.scal === 1 || data.pendingHash)) {
      const reason = await this.approvals.unavailable(
        data.tenant,
        ctx.credentialId,
        def.signing.sadExpiryMarginSec * 1000,
        data.pendingHash ? Buffer.from(data.pendingHash, 'hex') : undefined,
      );
      if (reason) throw new ApprovalNeededError(data.tenant, ctx.credentialId, reason);
    }
    // A SCAL2 document prepared before its approval is prepared again at the same time: same hash.
    const signingTime = data.signingTime ? new Date(data.signingTime) : new Date();
    let prepared;
    try {
      prepared = await this.pool.run({
        sourcePath: data.sourcePath,
        sourceSha256: data.sourceSha256,
        signingTime: signingTime.toISOString(),
        chain: ctx.chain,
        reason: `Invoice ${data.invoiceNumber}`,
        location: 'JP',
        name: ctx.facts.certificates.length ? `${def.tenant} e-seal` : def.tenant,
        // Sized to what this credential's CMS can be, not guessed: a 3 KB invoice stays a few KB.
        signatureBytes:
          this.options.signatureBytes ?? Math.ceil((ctx.template.maxCmsLength + 64) / 256) * 256,
      });
    } catch (err) {
      // The input cannot be sealed as it is (unreadable, changed, not a PDF we can update): retrying won't help.
      throw new UnrecoverableError(
        `invoice ${data.invoiceNumber} (${data.sourcePath}): ${(err as Error).message}`,
      );
    }
    let signature: Buffer;
    const hashToSign = Buffer.from(prepared.hashToSign);
    if (data.pendingHash && data.pendingHash !== hashToSign.toString('hex')) {
      throw new UnrecoverableError(
        `invoice ${data.invoiceNumber}: prepared again, the document no longer has the hash its approval waited for`,
      );
    }
    try {
      signature = await ctx.signer.sign(hashToSign);
    } catch (err) {
      if (err instanceof ApprovalNeededError) {
        const bound = ctx.facts.scal === 2 && ctx.sadManager.approvalBased;
        throw bound ? new AwaitingBoundApproval(err, hashToSign, signingTime.toISOString()) : err;
      }
      throw fateOf(err, `invoice ${data.invoiceNumber}: signing failed`);
    }
    const cms = ctx.template.assemble(Buffer.from(prepared.signedAttributes), signature);
    const sealed = embedCms(
      {
        bytes: Buffer.from(prepared.preparedBytes),
        byteRange: prepared.byteRange,
        contentDigest: Buffer.from(prepared.contentDigest),
        inputLength: prepared.inputLength,
        signatureBytes: prepared.signatureBytes,
      },
      cms,
    );
    const [a, b, c, d] = prepared.byteRange;
    const check = verifyCms(cms, Buffer.concat([sealed.subarray(a, a + b), sealed.subarray(c, c + d)]), {
      expectedCertificateDer: ctx.template.leafCertificateDer,
    });
    if (!check.valid) {
      throw new SealError(
        `invoice ${data.invoiceNumber}: sealed PDF did not verify: ${check.problems.join('; ')}`,
      );
    }
    await writeNew(target, sealed);
    const sealedSha256 = crypto.createHash('sha256').update(sealed).digest('hex');
    await appendManifestRow(path.dirname(target), {
      invoiceNumber: data.invoiceNumber,
      file: path.basename(target),
      sealedSha256,
      sourceSha256: data.sourceSha256,
      signingTime: signingTime.toISOString(),
      certificateSerial: ctx.template.certificateSerialHex,
      job: data.jobName,
      runId: data.runId,
    });
    await recordSealed(def.outboxRoot, data.tenant, data.invoiceNumber, data.sourceSha256, target);
    if (data.pendingHash) await this.approvals.removePending(data.tenant, ctx.credentialId, hashToSign);
    await this.audit(def, {
      type: 'seal',
      invoice: data.invoiceNumber,
      credentialId: ctx.credentialId,
      sourceSha256: data.sourceSha256,
      sealedSha256,
      certificateSerial: ctx.template.certificateSerialHex,
      file: path.relative(path.join(def.outboxRoot, data.tenant), target),
    });
    return { status: 'sealed', file: target, sealedSha256 };
  }

  private closing?: Promise<void>;

  /** Finishes the jobs in hand, then releases the pool and signers. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.worker.close();
      await this.contexts.close();
      await this.pool.close();
    })();
    return this.closing;
  }
}

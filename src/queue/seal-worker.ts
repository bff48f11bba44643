// The BullMQ worker that seals one invoice per job: prepare (thread pool) → sign (batched through the
// credential's BatchSigner) → finish (CMS, embed, verify) → deliver (atomic write, manifest).
import crypto from 'node:crypto';
import path from 'node:path';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { embedCms } from '../pdf';
import { verifyCms } from '../pades';
import { appendManifestRow, checkExistingSeal, sealedFilePath, writeNew } from '../outbox';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { SealerError } from '../common/errors';
import { PreparePool } from './prepare-pool';
import { SigningContexts, type SigningContext } from './signing-contexts';
import { SEAL_QUEUE, type SealJobData, type SealJobResult } from './seal-job';
import { addRunCounts, runKey } from './run-record';

export class SealError extends SealerError {}

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
  /** bytes reserved for the CMS in each placeholder. Default 16384. */
  signatureBytes?: number;
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
  private readonly jobsByName: Map<string, JobDefinition>;

  constructor(private readonly options: SealWorkerOptions) {
    this.jobsByName = new Map(options.jobs.map((j) => [j.name, j]));
    this.pool = new PreparePool({ threads: options.threads });
    this.contexts = new SigningContexts({
      logger: options.logger,
      defaultProviderUrl: options.defaultProviderUrl,
      batchMaxWaitMs: options.batchMaxWaitMs ?? 200,
      env: options.env,
    });
    this.worker = new Worker<SealJobData, SealJobResult>(SEAL_QUEUE, (job) => this.process(job), {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency ?? 64,
      autorun: false,
    });
    this.worker.on('completed', (job, result) => {
      void this.count(job.data.runId, result.status === 'sealed' ? { sealed: 1 } : { alreadySealed: 1 });
    });
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
        void this.count(job.data.runId, { failed: 1 }).then(() =>
          this.options.redis.rpush(
            `${runKey(this.options.prefix, job.data.runId)}:failures`,
            JSON.stringify({ invoice: job.data.invoiceNumber, line: job.data.line, reason: err.message }),
          ),
        );
      }
    });
    this.worker.on('error', (err) => this.options.logger.error({ err }, 'worker error'));
  }

  private async count(runId: string, counts: Parameters<typeof addRunCounts>[3]): Promise<void> {
    try {
      await addRunCounts(this.options.redis, this.options.prefix, runId, counts);
    } catch (err) {
      this.options.logger.error({ err, runId }, 'cannot update run record');
    }
  }

  /** Starts taking jobs; resolves when the worker is closed. */
  run(): Promise<void> {
    return this.worker.run();
  }

  private jobDefinition(data: SealJobData): JobDefinition {
    const def = this.jobsByName.get(data.jobName);
    if (!def)
      throw new UnrecoverableError(`invoice ${data.invoiceNumber}: no job definition named ${data.jobName}`);
    // Tenant isolation: a job is sealed only with its own tenant's profile.
    if (def.tenant !== data.tenant) {
      throw new UnrecoverableError(
        `invoice ${data.invoiceNumber}: job names tenant ${data.tenant} but job definition ${def.name} belongs to ${def.tenant}`,
      );
    }
    return def;
  }

  async process(job: Job<SealJobData, SealJobResult>): Promise<SealJobResult> {
    const data = job.data;
    const def = this.jobDefinition(data);
    let target: string;
    try {
      target = sealedFilePath(def.outboxRoot, data.tenant, data.runDate, data.invoiceNumber);
    } catch (err) {
      throw new UnrecoverableError((err as Error).message);
    }
    const existing = await checkExistingSeal(target, data.sourceSha256, data.sourceLength);
    if (existing === 'same-source') return { status: 'already-sealed', file: target };
    if (existing === 'different') {
      throw new UnrecoverableError(
        `invoice ${data.invoiceNumber}: ${target} already holds a different sealed document; not overwriting`,
      );
    }
    const context = await this.contexts.get(def);
    return this.seal(data, def, context, target);
  }

  private async seal(
    data: SealJobData,
    def: JobDefinition,
    ctx: SigningContext,
    target: string,
  ): Promise<SealJobResult> {
    const signingTime = new Date();
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
        signatureBytes: this.options.signatureBytes ?? 16384,
      });
    } catch (err) {
      // The input cannot be sealed as it is (unreadable, changed, not a PDF we can update): retrying won't help.
      throw new UnrecoverableError(
        `invoice ${data.invoiceNumber} (${data.sourcePath}): ${(err as Error).message}`,
      );
    }
    const signature = await ctx.signer.sign(Buffer.from(prepared.hashToSign));
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

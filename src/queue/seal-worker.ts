// The BullMQ worker that seals one invoice per job: prepare (thread pool) → sign (batched through the
// credential's BatchSigner) → finish (CMS, embed, verify) → deliver (atomic write, manifest).
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DelayedError, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { CertificateUnusableError, ChainError } from '../pades';
import {
  AwaitingApproval,
  PreparedHashChanged,
  SealError,
  sealDocument,
  SealStepError,
  type LevelFinisher,
  type SealDocumentResult,
} from '../seal';
import { ApprovalNeededError, AwaitingBoundApproval } from '../csc';
import { ParkedApprovals, RedisAuthorisationGuards } from '../custody';
import {
  AuditLog,
  type AuditEntryInput,
  checkExistingSeal,
  deliver as deliverSealed,
  type ExistingSeal,
  findSealed,
  NotASealError,
  repair,
  sealedFilePath,
  sweepTenantOutbox,
} from '../outbox';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import type { RedisHealth } from '../common/redis-health';
import { PrepareError, PreparePool, type PrepareLimits, type PrepareTask } from '../seal';
import { SigningContexts, type SigningContext } from './signing-contexts';
import {
  sealJobData,
  sealQueueName,
  storedSealJobData,
  type SealJobData,
  type SealJobResult,
} from './seal-job';
import {
  markAwaiting,
  pendingInvoices,
  recordEachOutcome,
  type OutcomeRecord,
  settleRun,
  type Outcome,
  type RunCounts,
  type SettledInvoice,
} from './run-record';
import { reportSettledRun, reportUnreportedRuns } from './report-run';
import { fanOut, type SealStages, type SealingObserver } from '../common/sealing-events';
import { ByteBudget } from '../common/byte-budget';
import { UNLENT_SLOT, WorkSlots, type WorkSlot } from '../common/work-slots';
import { KeyedGroupCommit } from '../common/group-commit';
import { archiveSpecs, TenantArchives, type ArchiveIndex, type ArchivedInvoice } from '../archive';
import { countProviderCalls } from './run-calls';
import {
  DEFAULT_AWAITING_SIGNATURE_PER_SLOT,
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_HELD_MB,
  renderedBytesEstimate,
  WORKER_ARCHIVE_CACHE_MIB,
} from './worker-defaults';
import { fateOf, JobDefinitionUnavailable, UnsealableError, withContext, type Fate } from './job-fate';

export { SealError } from '../seal';

/** The worker began to close while an invoice waited for bytes: it goes back to its queue unsealed. */
class WorkerClosing extends Error {}

/** What the run keeps of a settled invoice for its report (see SettledInvoice). */
function settledInvoice(data: SealJobData, result?: SealJobResult): SettledInvoice {
  return {
    invoice: data.invoiceNumber,
    line: data.line,
    exportFile: data.exportFile,
    customer: data.customer,
    amount: data.amount,
    issueDate: data.issueDate,
    file: result?.file,
    sealedSha256: result?.sealedSha256,
  };
}

/** The job with its data whole (see StoredSealJobData); the same object. */
function whole<J extends Job<SealJobData>>(job: J): J {
  job.data = sealJobData(job.id, job.data);
  return job;
}

function isInside(folder: string, file: string): boolean {
  const rel = path.relative(folder, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

export interface SealWorkerOptions {
  connection: ConnectionOptions;
  /** for run records */
  redis: Redis;
  prefix: string;
  jobs: JobDefinition[];
  logger: Logger;
  /** jobs processed at once by this process, all tenants together; should be at least 2 × batchSize so
   * batches fill, and more where the provider is slow (see DEFAULT_CONCURRENCY). Default 128. */
  concurrency?: number;
  /** jobs that may wait for their signature beyond `concurrency`: a job whose hash went to the signer
   * lends its slot to the next job meanwhile, so a slow provider's calls overlap. Default
   * DEFAULT_AWAITING_SIGNATURE_PER_SLOT × concurrency; 0: a job holds its slot while it waits. */
  awaitingSignature?: number;
  /** bytes of source PDFs held at once, from prepare to delivery: invoices beyond it wait, so that
   * hundreds in hand stay hundreds of small ones. Default DEFAULT_MAX_HELD_MB (256 MiB); one larger
   * than the whole budget is sealed alone. */
  maxHeldBytes?: number;
  /**
   * Authorise a credential's next SAD ahead, on the next TOTP step, while the current one still has
   * signatures, so that a night is not idled waiting for a step whenever a SAD runs out. Default true.
   */
  authoriseAhead?: boolean;
  /** tenants whose queues this worker takes from besides its job definitions' (a tenant whose only
   * definition cannot be used now: its invoices are taken and told to wait, see unavailableJobs) */
  extraTenants?: string[];
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
  /** job definitions that could not be loaded, by name, with the reason: their invoices wait (delayed,
   * not failed) until a worker that has them takes them */
  unavailableJobs?: Map<string, string>;
  /** how long such an invoice waits before it is looked at again (ms). Default 300000. */
  unavailablePollMs?: number;
  /** times a job may be found stalled (its worker died holding it) before BullMQ fails it. Default 20:
   * a crash loop must not fail invoices for good; each stall is logged. */
  maxStalledCount?: number;
  /** how often stalled jobs are looked for (ms); BullMQ's default 30000 */
  stalledIntervalMs?: number;
  /** how long a job's lock lasts without renewal (ms); BullMQ's default 30000 */
  lockDurationMs?: number;
  /** limits on each prepare task (heap per thread, deadline, input and inflated bytes); defaults:
   * DEFAULT_PREPARE_LIMITS. A task over a limit fails its own invoice only. */
  prepareLimits?: Partial<PrepareLimits>;
  /** folds Redis connection errors into one line per outage */
  health?: RedisHealth;
  /** told of what sealing does (metrics); the worker also counts each run's provider calls itself */
  observe?: SealingObserver;
  /** where delivered invoices are indexed for finance's search; default TenantArchives over the jobs'
   * outboxes (or SEALER_ARCHIVE) */
  archive?: ArchiveIndex;
  env?: NodeJS.ProcessEnv;
}

export interface SealedEvent {
  data: SealJobData;
  result: SealJobResult;
}

export class SealWorker {
  /** one BullMQ worker per tenant queue, so a paused or huge tenant leaves the others their share */
  readonly workers = new Map<string, Worker<SealJobData, SealJobResult>>();
  /** the process-wide limit on jobs in hand: each tenant's jobs first come, first served, the tenants in turn */
  private readonly slots: WorkSlots;
  /** jobs that may wait for their signature beyond the concurrency (the option, or its default) */
  readonly awaitingSignature: number;
  /** the sources held between prepare and delivery */
  private readonly heldBytes: ByteBudget;
  readonly contexts: SigningContexts;
  private readonly pool: PreparePool;
  private readonly approvals: ParkedApprovals;
  private readonly jobsByName: Map<string, JobDefinition>;
  private readonly observe: SealingObserver;
  private readonly archive: ArchiveIndex;
  private readonly ownArchive: boolean;
  /** Archive rows of one tenant delivered together go in one transaction; a bad row fails alone, and
   * a slow tenant's index does not hold up another's rows. */
  private readonly archiveRows = new KeyedGroupCommit<ArchivedInvoice>(
    async (_tenant, rows) => {
      if (this.archive.recordMany) await this.archive.recordMany(rows);
      else for (const row of rows) await this.archive.record(row);
    },
    { isolateFailures: true, maxItems: 500 },
  );

  constructor(private readonly options: SealWorkerOptions) {
    this.jobsByName = new Map(options.jobs.map((j) => [j.name, j]));
    this.pool = new PreparePool({
      threads: options.threads,
      ...options.prepareLimits,
      onThreadError: (err) => options.logger.warn({ err: err.message }, 'prepare thread failed'),
    });
    this.approvals = new ParkedApprovals(options.redis, options.prefix);
    this.ownArchive = options.archive === undefined;
    this.archive =
      options.archive ??
      new TenantArchives(archiveSpecs(options.jobs, options.env), { cacheMiB: WORKER_ARCHIVE_CACHE_MIB });
    this.observe = fanOut(
      countProviderCalls(options.redis, options.prefix, (err) =>
        options.logger.warn({ err: err.message }, "cannot count a run's provider calls"),
      ),
      options.observe,
    );
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.heldBytes = new ByteBudget(options.maxHeldBytes ?? DEFAULT_MAX_HELD_MB * 1024 * 1024);
    this.contexts = new SigningContexts({
      observe: this.observe,
      logger: options.logger,
      defaultProviderUrl: options.defaultProviderUrl,
      batchMaxWaitMs: options.batchMaxWaitMs ?? 200,
      batchMaxDelayMs: options.batchMaxDelayMs,
      approvals: this.approvals,
      // One authorisation at a time per credential across every worker process, a TOTP step never
      // used twice, and a refused factor stopping the credential everywhere.
      guards: new RedisAuthorisationGuards({
        redis: options.redis,
        prefix: options.prefix,
        logger: options.logger,
      }),
      // Ask the provider for what is queued, not for multisign: providers may bill what is authorised.
      demandFor: (tenant, credentialId) =>
        pendingInvoices(
          options.redis,
          options.prefix,
          options.jobs
            .filter((j) => j.tenant === tenant && j.signing.credentialId === credentialId)
            .map((j) => j.name),
        ),
      // What the demand counts that this process has signed already: its invoices past the signer.
      ...(options.authoriseAhead !== false && {
        authoriseAheadMargin: (tenant, credentialId) => this.signedInHand.count(tenant, credentialId),
      }),
      env: options.env,
      // Loading the sealed file again for the DSS and the document timestamp is prepare's kind of work:
      // it runs in the same threads, under the same limits, so the event loop stays free for batching.
      pdfUpdates: {
        appendDss: async (pdf, content) =>
          Buffer.from((await this.pool.runUpdate('sealed file', { kind: 'dss', bytes: pdf, content })).bytes),
        prepareDocTimestamp: async (pdf, signatureBytes) => {
          const r = await this.pool.runUpdate('sealed file', {
            kind: 'docTimestamp',
            bytes: pdf,
            signatureBytes,
          });
          return {
            bytes: Buffer.from(r.bytes),
            byteRange: r.byteRange!,
            contentDigest: Buffer.from(r.contentDigest!),
            inputLength: r.inputLength!,
            signatureBytes: r.signatureBytes!,
          };
        },
      },
    });
    this.slots = new WorkSlots(
      concurrency,
      options.awaitingSignature ?? DEFAULT_AWAITING_SIGNATURE_PER_SLOT * concurrency,
    );
    this.awaitingSignature = this.slots.maxLent;
    const tenants = new Set([...options.jobs.map((j) => j.tenant), ...(options.extraTenants ?? [])]);
    for (const tenant of [...tenants].sort()) {
      const worker = new Worker<SealJobData, SealJobResult>(
        sealQueueName(tenant),
        (job, token) => this.slots.run((slot) => this.processWhenFree(tenant, job, token, slot), tenant),
        {
          connection: options.connection,
          prefix: options.prefix,
          // Each tenant's worker may hold as many jobs as the whole process: the shared slots above
          // bound the work, and a tenant alone on a night still fills every slot. (BullMQ cannot be
          // grown as jobs lend their slots: its fetch loop waits for a job to end before it looks.)
          concurrency: this.slots.capacity,
          autorun: false,
          maxStalledCount: options.maxStalledCount ?? 20,
          ...(options.stalledIntervalMs === undefined ? {} : { stalledInterval: options.stalledIntervalMs }),
          ...(options.lockDurationMs === undefined ? {} : { lockDuration: options.lockDurationMs }),
        },
      );
      this.watch(worker);
      this.workers.set(tenant, worker);
    }
  }

  /**
   * A job that waited for a slot may have been fetched before its tenant was paused or the worker began
   * to close: it goes back to its queue (delayed until now: no attempt spent) instead of sealing, so a
   * pause stops a tenant at once and a closing worker starts nothing new.
   */
  private async processWhenFree(
    tenant: string,
    job: Job<SealJobData, SealJobResult>,
    token: string | undefined,
    slot: WorkSlot,
  ): Promise<SealJobResult> {
    if (this.closing || (await this.tenantPaused(tenant))) {
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    return this.process(job, token, slot);
  }

  private readonly pausedSeen = new Map<string, { paused: boolean; at: number }>();

  /** Whether the tenant's queue is paused (BullMQ's meta flag, what Queue.isPaused reads, read on the
   * worker's own connection rather than a Queue's per tenant), looked up at most once a second. */
  private async tenantPaused(tenant: string): Promise<boolean> {
    const seen = this.pausedSeen.get(tenant);
    if (seen && Date.now() - seen.at < 1000) return seen.paused;
    const key = `${this.options.prefix}:${sealQueueName(tenant)}:meta`;
    const paused = (await this.options.redis.hexists(key, 'paused')) === 1;
    this.pausedSeen.set(tenant, { paused, at: Date.now() });
    return paused;
  }

  /** Calls `listener` for every job of every tenant that completes or fails (an attempt). */
  onJob(
    event: 'completed' | 'failed',
    listener: (job: Job<SealJobData> | undefined, err?: Error) => void,
  ): void {
    for (const w of this.workers.values()) {
      if (event === 'completed') w.on('completed', (job) => listener(whole(job)));
      else w.on('failed', (job, err) => listener(job && whole(job), err));
    }
  }

  private watch(worker: Worker<SealJobData, SealJobResult>): void {
    // The processor records every failure itself, awaited, before BullMQ learns the fate. A job that
    // BullMQ fails without running it to the end (stalled too often) is recorded here; recording is
    // idempotent (recordOutcome), so a failure the processor recorded is not counted or audited twice.
    worker.on('failed', (failed, err) => {
      if (!failed) return;
      // A job failed without running here (stalled too often) was read from Redis: make it whole.
      const job = whole(failed);
      const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (!final) return;
      this.recordFailure(job, { action: 'fail', kind: 'transient', reason: err.message }).catch(
        (e: unknown) =>
          this.options.logger.error(
            { invoice: job.data.invoiceNumber, err: (e as Error).message },
            'cannot record a failed invoice',
          ),
      );
    });
    worker.on('stalled', (jobId) => this.options.logger.warn({ jobId }, 'job stalled; it runs again'));
    // A job completed in Redis says Redis is back, even while the process's own client still waits out
    // its reconnect backoff (up to 2 s): without this, a short second outage could pass unlogged.
    worker.on('completed', () => this.options.health?.ready());
    worker.on('error', (err) => {
      if (this.options.health) this.options.health.error(err, 'worker');
      else this.options.logger.error({ err: err.message }, 'worker error');
    });
  }

  /** Job definitions whose invoices were told to wait (logged once each). */
  private readonly waitingJobs = new Set<string>();

  /** Invoices being processed now, by job ID (what a forced stop leaves to another worker). */
  private readonly inHand = new Map<string, string>();

  /** Whether the prepare thread pool still runs a task within `deadlineMs` (for /healthz). */
  poolAlive(deadlineMs = 2000): Promise<boolean> {
    return this.pool.alive(deadlineMs);
  }

  inFlight(): { jobId: string; invoice: string }[] {
    return [...this.inHand].map(([jobId, invoice]) => ({ jobId, invoice }));
  }

  /**
   * Counts the outcome once per job, and settles the run when it was the last. Outcomes of one run
   * settled together are counted in one round trip, and the run is checked for settling once for them.
   */
  private async settle(
    job: Job<SealJobData>,
    outcome: Outcome,
    fate?: Fate,
    result?: SealJobResult,
  ): Promise<boolean> {
    const data = job.data;
    const fresh = await this.outcomes.submit(data.runId, {
      jobName: data.jobName,
      record: {
        jobId: job.id ?? '',
        outcome,
        ...(fate && {
          failure: {
            invoice: data.invoiceNumber,
            line: data.line,
            reason: fate.reason,
            kind: fate.kind,
            jobId: job.id,
            attempts: job.attemptsMade + 1,
            exportFile: data.exportFile,
          },
        }),
        invoice: settledInvoice(data, result),
      },
    });
    if (fresh instanceof Error) throw fresh;
    return fresh;
  }

  /**
   * Each outcome resolves with its own result (counted now, or its error) once recorded: whether the
   * run settled is the group's business, so that a failure to settle never makes a recorded outcome
   * look unrecorded (its retry would then find it counted, and skip what follows a fresh outcome).
   */
  private readonly outcomes = new KeyedGroupCommit<
    { jobName: string; record: OutcomeRecord },
    boolean | Error
  >(
    async (runId, items) => {
      const { redis, prefix } = this.options;
      const fresh = await recordEachOutcome(
        redis,
        prefix,
        runId,
        items.map((i) => i.record),
      );
      await this.settleRunOf(items[0]!.jobName, runId);
      return fresh;
    },
    { maxItems: 500 },
  );

  /** Settles the run if its last outcome is in; a failure to ask is logged and asked again later. */
  private async settleRunOf(jobName: string, runId: string, attempt = 0): Promise<void> {
    const { redis, prefix, logger } = this.options;
    try {
      const settled = await settleRun(redis, prefix, runId);
      if (!settled) return;
      logger.info({ runId, ...settled }, 'run settled');
      await this.report(jobName, runId, settled);
    } catch (err) {
      const delays = [1000, 5000, 30_000];
      const delay = delays[attempt];
      logger.error(
        { runId, err: (err as Error).message, retryInMs: delay },
        'cannot settle the run now; its outcomes are recorded',
      );
      if (delay !== undefined) {
        setTimeout(() => {
          this.settleRunOf(jobName, runId, attempt + 1).catch(() => undefined);
        }, delay).unref();
      }
    }
  }

  /** The settled run's report for finance (never throws: see reportSettledRun). */
  private async report(jobName: string, runId: string, counts: RunCounts): Promise<void> {
    const job = this.jobsByName.get(jobName);
    await reportSettledRun({ ...this.options, runId, counts, job });
  }

  /** Everything a final failure records, awaited: run counts, failures list, audit refusal, cleanup. */
  private async recordFailure(job: Job<SealJobData>, fate: Fate): Promise<void> {
    const data = job.data;
    const fresh = await this.settle(job, 'failed', fate);
    if (fresh) {
      this.observe({
        type: 'failed',
        tenant: data.tenant,
        job: data.jobName,
        runId: data.runId,
        kind: fate.kind,
      });
    }
    const def = this.jobsByName.get(data.jobName);
    if (data.pendingHash && def) {
      await this.approvals.removePending(
        data.tenant,
        def.signing.credentialId,
        Buffer.from(data.pendingHash, 'hex'),
      );
    }
    if (!fresh) return;
    // The refusal goes into the audit trail of the credential's tenant and, for a job naming
    // another tenant (a forgery or a mix-up), into that tenant's too.
    const named = [...this.jobsByName.values()].find((j) => j.tenant === data.tenant);
    for (const owner of new Set([def, named])) {
      if (!owner) continue;
      await this.audit(owner, {
        type: 'refusal',
        invoice: data.invoiceNumber,
        credentialId: def?.signing.credentialId,
        reason: fate.reason,
      });
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

  /** Starts taking jobs (after sweeping what crashed writers left); resolves when the worker is closed. */
  async run(): Promise<void> {
    const swept = new Set<string>();
    for (const def of this.jobsByName.values()) {
      const key = `${def.outboxRoot}|${def.tenant}`;
      if (swept.has(key)) continue;
      swept.add(key);
      try {
        const removed = await sweepTenantOutbox(def.outboxRoot, def.tenant);
        if (removed)
          this.options.logger.info({ tenant: def.tenant, removed }, 'removed temp files of crashed writers');
      } catch (err) {
        this.options.logger.warn({ tenant: def.tenant, err: (err as Error).message }, 'cannot sweep outbox');
      }
    }
    if (this.closing) return;
    // Beside taking jobs, not before: a night does not wait for reports a crashed process owed.
    const catchUp = reportUnreportedRuns({ ...this.options, jobs: [...this.jobsByName.values()] });
    await Promise.all([...[...this.workers.values()].map((w) => w.run()), catchUp]);
  }

  private jobDefinition(data: SealJobData, realSource?: string): JobDefinition {
    const def = this.jobsByName.get(data.jobName);
    if (!def) {
      const why = this.options.unavailableJobs?.get(data.jobName);
      if (why !== undefined) {
        throw new JobDefinitionUnavailable(
          `invoice ${data.invoiceNumber}: job definition ${data.jobName} is not loaded (${why}); waiting`,
        );
      }
      throw new UnsealableError(`invoice ${data.invoiceNumber}: no job definition named ${data.jobName}`);
    }
    // Tenant isolation, checked before any provider call: a job is sealed only with its own tenant's
    // profile, never from another tenant's export folder or from any outbox. (A source elsewhere is
    // allowed: `sealer enqueue --file` reads exports from any folder.) Symbolic links are resolved by
    // the caller (see deliver) so a link cannot smuggle another tenant's file in.
    if (def.tenant !== data.tenant) {
      throw new UnsealableError(
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
        throw new UnsealableError(
          `invoice ${data.invoiceNumber}: source ${data.sourcePath} lies in ${other.tenant !== def.tenant ? `tenant ${other.tenant}'s export folder or outbox` : 'an outbox'}; tenant ${def.tenant} may not seal it`,
        );
      }
    }
    return def;
  }

  async process(
    job: Job<SealJobData, SealJobResult>,
    token?: string,
    slot: WorkSlot = UNLENT_SLOT,
  ): Promise<SealJobResult> {
    // Redis holds the job's data less what its ID says (StoredSealJobData): whole again from here on.
    whole(job);
    const id = job.id ?? '';
    this.inHand.set(id, job.data.invoiceNumber);
    try {
      return await this.processInHand(job, token, slot);
    } finally {
      this.inHand.delete(id);
    }
  }

  private async processInHand(
    job: Job<SealJobData, SealJobResult>,
    token: string | undefined,
    slot: WorkSlot,
  ): Promise<SealJobResult> {
    // Filled in by seal() as the invoice goes through its steps, for the 'sealed' event.
    const stages: Partial<SealStages> = { queueMs: Math.max(0, Date.now() - job.timestamp) };
    try {
      return await this.sealAndSettle(job, token, stages, slot);
    } finally {
      this.signedInHand.delete(stages);
    }
  }

  /** Invoices in hand whose hash went to the signer, until their jobs are done (the ahead margin). */
  private readonly signedInHand = new SignedInHand();

  private async sealAndSettle(
    job: Job<SealJobData, SealJobResult>,
    token: string | undefined,
    stages: Partial<SealStages>,
    slot: WorkSlot,
  ): Promise<SealJobResult> {
    let result: SealJobResult;
    const started = performance.now();
    try {
      result = await this.deliver(job.data, stages, slot);
    } catch (err) {
      if (err instanceof WorkerClosing) {
        // Not begun: back to the queue at once, no attempt spent (as processWhenFree does).
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      const fate = fateOf(err);
      if (fate.action === 'wait') await this.wait(job, token, err, fate);
      const attempts = job.opts.attempts ?? 1;
      const final = fate.action === 'fail' || job.attemptsMade + 1 >= attempts;
      this.options.logger.warn(
        {
          tenant: job.data.tenant,
          invoice: job.data.invoiceNumber,
          attempt: job.attemptsMade + 1,
          kind: fate.kind,
          final,
          reason: fate.reason,
        },
        final ? 'seal failed' : 'seal failed; retrying',
      );
      if (!final) throw new SealError(fate.reason, { cause: err });
      // Recorded before BullMQ hears of it: a crash here re-runs the job, which records it once.
      await this.recordFailure(job, fate);
      throw new UnrecoverableError(fate.reason);
    }
    // Counted here, not in a 'completed' listener, so a crash cannot leave a run that never settles; a
    // re-run after a crash finds the invoice sealed, and the run counts it once.
    const recording = performance.now();
    const fresh = await this.settle(
      job,
      result.status === 'sealed' ? 'sealed' : 'alreadySealed',
      undefined,
      result,
    );
    stages.recordMs = performance.now() - recording;
    if (fresh && result.status === 'sealed') {
      this.observe({
        type: 'sealed',
        tenant: job.data.tenant,
        job: job.data.jobName,
        runId: job.data.runId,
        level: result.level ?? this.jobsByName.get(job.data.jobName)?.signing.level ?? 'B-B',
        ms: performance.now() - started,
        ...(stages.prepareMs === undefined ? {} : { stages: stages as SealStages }),
      });
    }
    return result;
  }

  /** Not a failure: the invoice waits (delayed, no attempt spent) for an approval or its definition. */
  private async wait(
    job: Job<SealJobData, SealJobResult>,
    token: string | undefined,
    err: unknown,
    fate: Fate,
  ): Promise<never> {
    const { redis, prefix, logger } = this.options;
    if (err instanceof AwaitingBoundApproval) {
      // SCAL2: the approver must see this hash; keep what makes the next preparation identical.
      // Written back as stored (less what the ID says); this process keeps the whole data.
      const data = { ...job.data, signingTime: err.signingTime, pendingHash: err.hash.toString('hex') };
      await job.updateData(storedSealJobData(data) as SealJobData);
      job.data = data;
      await this.approvals.addPending(err.tenant, err.credentialId, {
        hash: err.hash,
        jobId: job.id ?? '',
        invoice: job.data.invoiceNumber,
      });
    }
    let pollMs = this.options.unavailablePollMs ?? 300_000;
    if (err instanceof ApprovalNeededError) {
      pollMs = this.options.approvalPollMs ?? 30_000;
      const first = await markAwaiting(redis, prefix, job.data.runId, job.id ?? '', true);
      if (first) {
        logger.info(
          { tenant: job.data.tenant, invoice: job.data.invoiceNumber, reason: err.reason },
          'awaiting approval',
        );
      }
    } else if (!this.waitingJobs.has(job.data.jobName)) {
      // Once per job definition: a tenant's night may hold thousands of invoices waiting for it.
      this.waitingJobs.add(job.data.jobName);
      logger.warn(
        { tenant: job.data.tenant, job: job.data.jobName, reason: fate.reason },
        'invoices waiting',
      );
    }
    await job.moveToDelayed(Date.now() + pollMs, token);
    throw new DelayedError();
  }

  private async deliver(
    data: SealJobData,
    stages: Partial<SealStages>,
    slot: WorkSlot,
  ): Promise<SealJobResult> {
    // Where the source really is, through any symbolic link; a missing file fails later, in prepare.
    const real = await fs.realpath(data.sourcePath).catch(() => undefined);
    const def = this.jobDefinition(data, real);
    const root = def.outboxRoot;
    let target: string;
    try {
      target = sealedFilePath(root, data.tenant, data.runDate, data.invoiceNumber);
    } catch (err) {
      throw new UnsealableError((err as Error).message, { cause: err });
    }
    // Sealed before, on any run date: deliver nothing new and spend no signature.
    const earlier = await findSealed(root, data.tenant, data.invoiceNumber, data.sourceSha256);
    if (earlier) {
      // This run's own earlier attempt sealed it and then stopped before the job completed: sealed, once.
      const status = earlier.runId === data.runId ? 'sealed' : 'already-sealed';
      return { status, file: earlier.file };
    }
    const existing = await this.existingSeal(data, def, target);
    if (existing === 'same-source') return this.completeEarlierDelivery(data, target);
    if (existing === 'different') {
      throw new UnsealableError(
        `invoice ${data.invoiceNumber}: ${target} already holds a different sealed document; not overwriting`,
      );
    }
    let context: SigningContext;
    try {
      context = await this.contexts.get(def);
    } catch (err) {
      throw withContext(
        err,
        `invoice ${data.invoiceNumber}: cannot reach credential ${def.signing.credentialId}`,
      );
    }
    return this.seal(data, def, context, target, stages, slot);
  }

  /**
   * Whether the target holds a seal of this invoice's source already. A rendered invoice's source is
   * the PDF its record renders: rendered again (the same bytes, deterministic) only when a file is there,
   * which only a crash between the file and its records leaves.
   */
  private async existingSeal(data: SealJobData, def: JobDefinition, target: string): Promise<ExistingSeal> {
    if (data.rendered === undefined) return checkExistingSeal(target, data.sourceSha256, data.sourceLength);
    if (!(await fileExists(target))) return 'absent';
    let pdf: Uint8Array;
    try {
      pdf = await this.pool.render(this.prepareTask(data, def, new Date(0), 0, undefined));
    } catch (err) {
      const transient = (err as { kind?: unknown } | null)?.kind === 'transient';
      if (transient) throw withContext(err, `invoice ${data.invoiceNumber}`);
      throw new UnsealableError(`invoice ${data.invoiceNumber}: ${(err as Error).message}`, { cause: err });
    }
    const sha256 = crypto.createHash('sha256').update(pdf).digest('hex');
    return checkExistingSeal(target, sha256, pdf.length);
  }

  /** A crash between writing the sealed file and recording it left the manifest row, the audit entry
   * or the index missing: the outbox's repair checks the file and adds what is missing, without sealing
   * again; the archive row (an upsert) is written again. */
  private async completeEarlierDelivery(data: SealJobData, target: string): Promise<SealJobResult> {
    const def = this.jobDefinition(data);
    let repaired;
    try {
      repaired = await repair({
        root: def.outboxRoot,
        tenant: data.tenant,
        target,
        invoiceNumber: data.invoiceNumber,
        sourceSha256: data.sourceSha256,
        credentialId: def.signing.credentialId,
        job: data.jobName,
        runId: data.runId,
        level: def.signing.level,
        customer: data.customer,
        amount: data.amount,
        issueDate: data.issueDate,
        registrationNumber: data.registrationNumber,
      });
    } catch (err) {
      if (err instanceof NotASealError) throw new UnsealableError(err.message, { cause: err });
      throw err;
    }
    await this.archiveRow(data, {
      file: target,
      sealedSha256: repaired.sealedSha256,
      level: repaired.level ?? def.signing.level,
      sealedAt: repaired.sealedAt,
      certificateSerial: repaired.certificateSerial,
      timestampAt: repaired.timestampAt,
    });
    this.options.logger.warn(
      { invoice: data.invoiceNumber, file: target, restored: repaired.restored },
      'interrupted delivery completed without sealing again',
    );
    // Sealed by this run when its manifest row says so; a file whose row was missing counts as
    // already sealed (which run wrote it cannot be told).
    return {
      status: repaired.sealedBy === data.runId ? 'sealed' : 'already-sealed',
      file: target,
      sealedSha256: repaired.sealedSha256,
    };
  }

  private async seal(
    data: SealJobData,
    def: JobDefinition,
    ctx: SigningContext,
    target: string,
    stages: Partial<SealStages>,
    slot: WorkSlot,
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
    let finisher: LevelFinisher;
    try {
      finisher = await this.contexts.finisher(def, ctx);
    } catch (err) {
      // A revoked or expired certificate stays so: its invoices fail with the reason and spend nothing.
      if (err instanceof CertificateUnusableError || err instanceof ChainError) {
        throw new UnsealableError(
          `invoice ${data.invoiceNumber}: credential ${ctx.credentialId}: ${err.message}`,
          { cause: err },
        );
      }
      throw withContext(err, `invoice ${data.invoiceNumber}: cannot seal at level ${def.signing.level}`);
    }
    // A SCAL2 document prepared before its approval is prepared again at the same time: same hash.
    const signingTime = data.signingTime ? new Date(data.signingTime) : new Date();
    // The source is held from prepare until it is delivered; its size is the one the producer read (a
    // job without one, from elsewhere, is charged the whole budget: sealed alone).
    const size =
      data.rendered !== undefined
        ? renderedBytesEstimate(data.sourceLength)
        : Number.isSafeInteger(data.sourceLength) && data.sourceLength >= 0
          ? data.sourceLength
          : Infinity;
    const release = await this.heldBytes.acquire(size);
    // A worker that began to close while this invoice waited for bytes signs nothing more.
    if (this.closing) {
      release();
      throw new WorkerClosing();
    }
    let delivered: { sealedSha256: string; timestampAt?: string };
    try {
      delivered = await this.sealAndDeliver(data, def, ctx, finisher, target, signingTime, stages, slot);
    } finally {
      release();
    }
    // The archive row (a search index, best effort) after the delivery.
    const t = performance.now();
    await this.archiveRow(data, {
      file: target,
      sealedSha256: delivered.sealedSha256,
      level: finisher.level,
      sealedAt: signingTime.toISOString(),
      certificateSerial: ctx.template.certificateSerialHex,
      timestampAt: delivered.timestampAt,
    });
    // The approval waited for this very hash (sealDocument checked the prepared one against it).
    if (data.pendingHash) {
      await this.approvals.removePending(data.tenant, ctx.credentialId, Buffer.from(data.pendingHash, 'hex'));
    }
    stages.deliverMs = (stages.deliverMs ?? 0) + performance.now() - t;
    return { status: 'sealed', file: target, sealedSha256: delivered.sealedSha256, level: finisher.level };
  }

  /** Prepare, sign, finish (sealDocument), then the outbox's delivery; the source's bytes are granted. */
  private async sealAndDeliver(
    data: SealJobData,
    def: JobDefinition,
    ctx: SigningContext,
    finisher: LevelFinisher,
    target: string,
    signingTime: Date,
    stages: Partial<SealStages>,
    slot: WorkSlot,
  ): Promise<{ sealedSha256: string; timestampAt?: string }> {
    let sealed: SealDocumentResult;
    try {
      sealed = await sealDocument({
        pool: this.pool,
        finisher,
        // From the moment its hash is handed to the signer the invoice is counted (see
        // authoriseAheadMargin), and while it waits for the signature its slot is lent to the next job.
        signer: {
          signRaw: (hashes, runId) => {
            this.signedInHand.add(stages, ctx.tenant, ctx.credentialId);
            return slot.lend(() => ctx.signer.signRaw(hashes, runId));
          },
        },
        runId: data.runId,
        pendingHash: data.pendingHash || undefined,
        awaitsApproval: (err) => err instanceof ApprovalNeededError,
        // Sized to what this credential's CMS (and its TSA's token) can be, not guessed.
        task: this.prepareTask(
          data,
          def,
          signingTime,
          this.options.signatureBytes ?? finisher.signatureBytes,
          ctx,
        ),
      });
    } catch (err) {
      const invoice = `invoice ${data.invoiceNumber}`;
      if (err instanceof AwaitingApproval && err.cause instanceof ApprovalNeededError) {
        // Only an approval bound to hashes (SCAL2) needs this hash and time kept for the approver; a
        // counted one (SCAL1) waits as the signer said.
        const bound = ctx.facts.scal === 2 && ctx.sadManager.approvalBased;
        throw bound ? new AwaitingBoundApproval(err.cause, err.hash, err.signingTime) : err.cause;
      }
      if (err instanceof PreparedHashChanged) throw new UnsealableError(`${invoice}: ${err.message}`);
      if (!(err instanceof SealStepError)) throw err;
      const cause = err.cause;
      if (err.step === 'prepare') {
        // An input that cannot be sealed as it is (changed, not a PDF we can update, over a limit) fails;
        // a transient error (a file briefly unreadable) says so with its kind and is retried.
        // A PrepareError names the file already.
        const context = `${invoice}${cause instanceof PrepareError ? '' : ` (${data.sourcePath})`}`;
        const transient = (cause as { kind?: unknown } | null)?.kind === 'transient';
        throw transient
          ? withContext(cause, context)
          : new UnsealableError(`${context}: ${(cause as Error).message}`, { cause });
      }
      if (err.step === 'sign') throw withContext(cause, `${invoice}: signing failed`);
      if (cause instanceof SealError || cause instanceof CertificateUnusableError) {
        throw new SealError(`${invoice}: ${cause.message}`, { cause });
      }
      // A TSA or revocation source that failed (its own attempts spent): the job's retries try again,
      // and the last attempt fails the invoice with this reason. Never a lower level instead.
      throw withContext(cause, `${invoice}: level ${finisher.level}`);
    }
    const { finished, source } = sealed;
    Object.assign(stages, sealed.stages);
    const t = performance.now();
    // The outbox delivers: file, manifest row, audit entry, sealed-index entry; a crash between any two
    // leaves what the retry's repair completes (completeEarlierDelivery).
    const { sealedSha256 } = await deliverSealed({
      root: def.outboxRoot,
      tenant: def.tenant,
      target,
      invoiceNumber: data.invoiceNumber,
      sourceSha256: data.sourceSha256,
      source,
      update: finished.update,
      signingTime,
      certificateSerial: ctx.template.certificateSerialHex,
      credentialId: def.signing.credentialId,
      level: finisher.level,
      job: data.jobName,
      runId: data.runId,
      customer: data.customer,
      amount: data.amount,
      issueDate: data.issueDate,
      registrationNumber: data.registrationNumber,
    });
    stages.deliverMs = performance.now() - t;
    return { sealedSha256, timestampAt: finished.signatureTimestamp?.genTime.toISOString() };
  }

  /** What the prepare thread is given for this invoice (with no context: to render it alone). */
  private prepareTask(
    data: SealJobData,
    def: JobDefinition,
    signingTime: Date,
    signatureBytes: number,
    ctx: SigningContext | undefined,
  ): PrepareTask {
    return {
      sourcePath: data.sourcePath,
      sourceSha256: data.sourceSha256,
      ...(data.rendered && {
        render: {
          offset: data.rendered.offset,
          length: data.rendered.length,
          ...(def.invoiceLogoPath !== undefined && { logoPath: def.invoiceLogoPath }),
        },
      }),
      signingTime: signingTime.toISOString(),
      chain: ctx?.chain ?? [],
      reason: `Invoice ${data.invoiceNumber}`,
      location: 'JP',
      name: ctx?.facts.certificates.length ? `${def.tenant} e-seal` : def.tenant,
      signatureBytes,
      ...(def.signing.appearance && {
        appearance: {
          page: def.signing.appearance.page,
          x: def.signing.appearance.x,
          y: def.signing.appearance.y,
          size: def.signing.appearance.size,
          text: def.signing.appearance.text ?? def.tenant,
          imagePath: def.appearanceImagePath,
        },
      }),
    };
  }

  /** The invoice's row in the searchable archive (an upsert: the repair path may write it again). */
  private async archiveRow(
    data: SealJobData,
    seal: Pick<
      ArchivedInvoice,
      'file' | 'sealedSha256' | 'level' | 'sealedAt' | 'certificateSerial' | 'timestampAt'
    >,
  ): Promise<void> {
    try {
      await this.archiveRows.submit(data.tenant, {
        tenant: data.tenant,
        invoiceNumber: data.invoiceNumber,
        customer: data.customer ?? '',
        amount: data.amount ?? 0,
        ...(data.issueDate ? { issueDate: data.issueDate } : {}),
        ...(data.registrationNumber ? { registrationNumber: data.registrationNumber } : {}),
        sourceSha256: data.sourceSha256,
        job: data.jobName,
        runId: data.runId,
        ...seal,
      });
    } catch (err) {
      // The archive is a search index over what was delivered, written after the delivery is complete:
      // an unreachable index must not turn a delivered invoice into a failed one (nor spend signatures
      // on retries). The row is missing until `sealer archive reindex` rebuilds it from the manifests.
      this.options.logger.error(
        { tenant: data.tenant, invoice: data.invoiceNumber, err: (err as Error).message },
        'archive row not written: the invoice is delivered; run `sealer archive reindex` once the index is back',
      );
    }
  }

  private closing?: Promise<void>;

  /** Finishes the jobs in hand, then releases the pool and signers. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.workers.values()].map((w) => w.close()));
      await this.contexts.close();
      await this.pool.close();
      if (this.ownArchive) await this.archive.close();
    })();
    return this.closing;
  }
}

/** Invoices in hand whose hash went to the signer, by credential, until their jobs are done. */
class SignedInHand {
  private readonly keyOf = new Map<object, string>();
  private readonly counts = new Map<string, number>();

  add(invoice: object, tenant: string, credentialId: string): void {
    if (this.keyOf.has(invoice)) return;
    const key = `${tenant}\u0000${credentialId}`;
    this.keyOf.set(invoice, key);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  delete(invoice: object): void {
    const key = this.keyOf.get(invoice);
    if (key === undefined) return;
    this.keyOf.delete(invoice);
    const n = this.counts.get(key)! - 1;
    if (n === 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }

  count(tenant: string, credentialId: string): number {
    return this.counts.get(`${tenant}\u0000${credentialId}`) ?? 0;
  }
}

async function fileExists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

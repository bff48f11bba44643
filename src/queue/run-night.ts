// One night in one process: produce every given job's exports, then work the queue until every run
// is settled (sealed, already sealed or failed). Used by `sealer demo` and the benchmark; production
// splits the same pieces across `sealer schedule` and `sealer work`.
import type { ConnectionOptions, JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { ParkedApprovals } from '../custody';
import { produceRun, type ProduceResult } from './producer';
import { openSealQueue } from './seal-queue';
import { SealWorker } from './seal-worker';
import { readRun, runKey, runSettled, type RunCounts } from './run-record';

export interface NightOptions {
  jobs: JobDefinition[];
  connection: ConnectionOptions;
  redis: Redis;
  prefix: string;
  logger: Logger;
  concurrency?: number;
  /** jobs that may wait for their signature beyond `concurrency` (SealWorkerOptions.awaitingSignature) */
  awaitingSignature?: number;
  /** bytes of source PDFs held at once (SealWorkerOptions.maxHeldBytes) */
  maxHeldBytes?: number;
  threads?: number;
  defaultProviderUrl?: string;
  batchMaxWaitMs?: number;
  /** ...and at the latest this long after a partial batch's oldest hash arrived (ms) */
  batchMaxDelayMs?: number;
  /** called as invoices settle */
  onProgress?: (settled: number, total: number) => void;
  /** the producer's clock: names the run and its outbox folder; default now */
  now?: Date;
  /** job options for the seal queue (tests shorten the backoff); default SEAL_JOB_OPTIONS */
  jobOptions?: JobsOptions;
  /** give up waiting after this long (ms); default 30 minutes */
  timeoutMs?: number;
  /** return once every invoice not yet settled is waiting for a tenant's approval (default false:
   * wait for the approvals, as a night does) */
  stopWhenOnlyAwaiting?: boolean;
  /** how often an invoice awaiting approval looks again (ms) */
  approvalPollMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface NightRun {
  job: string;
  tenant: string;
  produced: ProduceResult;
  counts: RunCounts;
  failures: { invoice: string; line: number; reason: string }[];
}

export interface CredentialReport {
  tenant: string;
  credentialId: string;
  /** who holds the factors: secret-refs, provider-held, approval, implicit */
  custody: string;
  oneDocumentPerAuthorisation: boolean;
  signHashCalls: number;
  authorisations: number;
  signatures: number;
  unusedSignatures: number;
  /** RFC 3161 or signatures/timestamp requests (each probe and retry included) */
  timestampRequests: number;
}

export interface NightResult {
  runs: NightRun[];
  credentials: CredentialReport[];
  /** OCSP and CRL fetches of the night (B-LT and above), and the answers served from cache */
  revocation: { ocspRequests: number; crlRequests: number; cacheHits: number };
  seconds: number;
}

export async function runNight(options: NightOptions): Promise<NightResult> {
  const started = process.hrtime.bigint();
  const { redis, prefix, logger } = options;
  const queue = openSealQueue(options.connection, prefix, options.jobOptions);
  const worker = new SealWorker({
    connection: options.connection,
    redis,
    prefix,
    jobs: options.jobs,
    logger,
    concurrency: options.concurrency,
    awaitingSignature: options.awaitingSignature,
    maxHeldBytes: options.maxHeldBytes,
    threads: options.threads,
    defaultProviderUrl: options.defaultProviderUrl,
    batchMaxWaitMs: options.batchMaxWaitMs,
    batchMaxDelayMs: options.batchMaxDelayMs,
    approvalPollMs: options.approvalPollMs,
    env: options.env,
  });
  const running = worker.run();
  try {
    const produced: { job: JobDefinition; result: ProduceResult }[] = [];
    for (const job of options.jobs) {
      produced.push({
        job,
        result: await produceRun(job, { queue, redis, prefix, logger, now: options.now }),
      });
    }
    const deadline = Date.now() + (options.timeoutMs ?? 30 * 60_000);
    let counts: RunCounts[] = [];
    for (;;) {
      counts = await Promise.all(produced.map((p) => readRun(redis, prefix, p.result.runId)));
      const total = counts.reduce((n, c) => n + c.enqueued, 0);
      const settled = counts.reduce((n, c) => n + c.sealed + c.alreadySealed + c.failed, 0);
      const awaiting = counts.reduce((n, c) => n + (c.awaitingApproval ?? 0), 0);
      options.onProgress?.(Math.min(settled, total), total);
      if (counts.every(runSettled)) break;
      if (options.stopWhenOnlyAwaiting && awaiting > 0 && settled + awaiting >= total) break;
      if (Date.now() > deadline)
        throw new Error(`night did not settle: ${settled} of ${total} invoices done`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const runs: NightRun[] = await Promise.all(
      produced.map(async (p, i) => ({
        job: p.job.name,
        tenant: p.job.tenant,
        produced: p.result,
        counts: counts[i]!,
        failures: (await redis.lrange(`${runKey(prefix, p.result.runId)}:failures`, 0, -1)).map((s) =>
          JSON.parse(s),
        ),
      })),
    );
    const approvals = new ParkedApprovals(redis, prefix);
    const credentials = await Promise.all(
      (await worker.contexts.all()).map(async (ctx) => {
        const stats = ctx.signer.stats();
        const parked = ctx.sadManager.approvalBased
          ? await approvals.status(ctx.tenant, ctx.credentialId)
          : undefined;
        return {
          tenant: ctx.tenant,
          credentialId: ctx.credentialId,
          custody: ctx.custody,
          oneDocumentPerAuthorisation: ctx.oneDocumentPerAuthorisation,
          signHashCalls: ctx.client.calls.signHash,
          authorisations: ctx.client.calls.authorize,
          signatures: stats.signatures,
          // Under an approval, what is left on it; otherwise what is left on the last SAD.
          unusedSignatures: parked
            ? parked.expiresAt > Date.now()
              ? parked.remaining
              : 0
            : ctx.sadManager.unusedSignatures(),
          timestampRequests: ctx.timestampSources.reduce((n, t) => n + t.stats.requests, 0),
        };
      }),
    );
    return {
      runs,
      credentials,
      revocation: worker.contexts.revocationStats(),
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
  } finally {
    await worker.close();
    await running;
    await queue.close();
  }
}

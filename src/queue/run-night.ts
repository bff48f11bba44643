// One night in one process: produce every given job's exports, then work the queue until every run
// is settled (sealed, already sealed or failed). Used by `sealer demo` and the benchmark; production
// splits the same pieces across `sealer schedule` and `sealer work`.
import type { ConnectionOptions, JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
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
  threads?: number;
  defaultProviderUrl?: string;
  batchMaxWaitMs?: number;
  /** called as invoices settle */
  onProgress?: (settled: number, total: number) => void;
  /** the producer's clock: names the run and its outbox folder; default now */
  now?: Date;
  /** job options for the seal queue (tests shorten the backoff); default SEAL_JOB_OPTIONS */
  jobOptions?: JobsOptions;
  /** give up waiting after this long (ms); default 30 minutes */
  timeoutMs?: number;
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
  signHashCalls: number;
  authorisations: number;
  signatures: number;
  unusedSignatures: number;
}

export interface NightResult {
  runs: NightRun[];
  credentials: CredentialReport[];
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
    threads: options.threads,
    defaultProviderUrl: options.defaultProviderUrl,
    batchMaxWaitMs: options.batchMaxWaitMs,
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
      options.onProgress?.(Math.min(settled, total), total);
      if (counts.every(runSettled)) break;
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
    const credentials = (await worker.contexts.all()).map((ctx) => {
      const stats = ctx.signer.stats();
      return {
        tenant: ctx.tenant,
        credentialId: ctx.credentialId,
        signHashCalls: ctx.client.calls.signHash,
        authorisations: ctx.client.calls.authorize,
        signatures: stats.signatures,
        unusedSignatures: ctx.sadManager.unusedSignatures(),
      };
    });
    return { runs, credentials, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    await worker.close();
    await running;
    await queue.close();
  }
}

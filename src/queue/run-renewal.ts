// One renewal pass in one process, as runNight is for sealing: plan (read every latest manifest row's
// file and decide), enqueue one `renew` job per file to renew, work the queue until those jobs have
// settled, and sum up. A dry run stops after the plan. `sealer renew` and the scheduled trigger use it.
import type { ConnectionOptions, JobsOptions } from 'bullmq';
import { Job } from 'bullmq';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { planRenewals, type RenewalItem } from './renew-plan';
import {
  openRenewQueue,
  renewJobId,
  RenewWorker,
  type RenewJobData,
  type RenewJobResult,
} from './renew-worker';

export interface RenewalRunOptions {
  outboxRoot: string;
  jobs: JobDefinition[];
  tenant?: string;
  withinMs: number;
  dryRun?: boolean;
  connection?: ConnectionOptions;
  prefix?: string;
  logger: Logger;
  /** job options for the renew queue (tests shorten the backoff); default RENEW_JOB_OPTIONS */
  jobOptions?: JobsOptions;
  concurrency?: number;
  defaultProviderUrl?: string;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
  /** called as files settle */
  onProgress?: (item: RenewalOutcome, settled: number, total: number) => void;
  /** give up waiting after this long (ms); default 30 minutes */
  timeoutMs?: number;
}

export interface RenewalOutcome extends RenewalItem {
  /** for a planned job: what it did */
  outcome?: RenewJobResult['outcome'] | 'failed';
  result?: RenewJobResult;
  error?: string;
}

export interface RenewalSummary {
  checked: number;
  renewed: number;
  /** reason → files */
  skipped: Map<string, number>;
  failed: number;
  items: RenewalOutcome[];
}

/** What a skipped file is counted under in the summary line. */
function skipReason(item: RenewalOutcome): string {
  switch (item.action) {
    case 'up-to-date':
      return 'up to date';
    case 'not-renewable':
      return item.reason;
    case 'invalid':
      return 'fails verification or cannot be checked';
    case 'missing':
      return 'file missing';
    default:
      return item.result?.reason ?? item.reason;
  }
}

export function summarise(items: RenewalOutcome[]): RenewalSummary {
  const skipped = new Map<string, number>();
  let renewed = 0;
  let failed = 0;
  for (const item of items) {
    if (item.outcome === 'renewed' || item.outcome === 'finished') renewed++;
    else if (item.outcome === 'failed') failed++;
    else {
      const why = skipReason(item);
      skipped.set(why, (skipped.get(why) ?? 0) + 1);
    }
  }
  return { checked: items.length, renewed, skipped, failed, items };
}

/** "renew: N files checked, R renewed, S skipped (reasons...), F failed" */
export function summaryLine(s: RenewalSummary): string {
  const count = [...s.skipped.values()].reduce((n, v) => n + v, 0);
  const reasons = [...s.skipped.entries()].map(([why, n]) => `${n} ${why}`).join(', ');
  return `renew: ${s.checked} files checked, ${s.renewed} renewed, ${count} skipped${reasons ? ` (${reasons})` : ''}, ${s.failed} failed`;
}

export async function runRenewal(options: RenewalRunOptions): Promise<RenewalSummary> {
  const now = options.now ?? (() => new Date());
  const plan: RenewalOutcome[] = await planRenewals({
    outboxRoot: options.outboxRoot,
    jobs: options.jobs,
    tenant: options.tenant,
    withinMs: options.withinMs,
    now: now(),
  });
  const wanted = plan.filter((i) => (i.action === 'renew' || i.action === 'finish') && i.jobName);
  if (options.dryRun || wanted.length === 0) return summarise(plan);
  if (!options.connection || options.prefix === undefined) {
    throw new Error('a renewal that is not a dry run needs a Redis connection and prefix');
  }
  const queue = openRenewQueue(options.connection, options.prefix, options.jobOptions);
  const worker = new RenewWorker({
    connection: options.connection,
    prefix: options.prefix,
    jobs: options.jobs,
    logger: options.logger,
    concurrency: options.concurrency,
    defaultProviderUrl: options.defaultProviderUrl,
    env: options.env,
    now: options.now,
  });
  const running = worker.run();
  try {
    const ids = new Map<RenewalOutcome, string>();
    for (const item of wanted) {
      const data: RenewJobData = {
        tenant: item.tenant,
        jobName: item.jobName!,
        dir: item.dir,
        invoiceNumber: item.invoiceNumber,
        file: item.file,
        sealedSha256: item.row.sealedSha256,
        reason: item.reason,
        withinMs: options.withinMs,
      };
      const jobId = renewJobId(data);
      // A job of the same file and digest that settled before (failed, or skipped then) runs again;
      // one still queued or running (another `sealer renew`) is waited for, not doubled.
      const existing = await Job.fromId<RenewJobData, RenewJobResult>(queue, jobId);
      if (existing) {
        const state = await existing.getState();
        if (state === 'completed' || state === 'failed') await existing.remove();
      }
      await queue.add('renew', data, { jobId });
      ids.set(item, jobId);
    }
    const deadline = Date.now() + (options.timeoutMs ?? 30 * 60_000);
    let settled = 0;
    const open = new Set(ids.keys());
    while (open.size > 0) {
      for (const item of [...open]) {
        const job = await Job.fromId<RenewJobData, RenewJobResult>(queue, ids.get(item)!);
        const state = job ? await job.getState() : 'unknown';
        if (state === 'completed') {
          // Read again: the job may have completed between the first read and getState, and the
          // copy read before it has no return value yet.
          const done = await Job.fromId<RenewJobData, RenewJobResult>(queue, ids.get(item)!);
          if (!done?.returnvalue) continue;
          item.result = done.returnvalue;
          item.outcome = item.result.outcome;
        } else if (state === 'failed' || state === 'unknown') {
          // Read again, as for completed: a copy read before the job failed has no reason yet.
          const failed =
            state === 'failed'
              ? await Job.fromId<RenewJobData, RenewJobResult>(queue, ids.get(item)!)
              : undefined;
          item.outcome = 'failed';
          item.error = failed?.failedReason ?? job?.failedReason ?? 'the job disappeared from the queue';
        } else continue;
        open.delete(item);
        options.onProgress?.(item, ++settled, ids.size);
      }
      if (open.size === 0) break;
      if (Date.now() > deadline)
        throw new Error(`renewal did not settle: ${settled} of ${ids.size} files done`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return summarise(plan);
  } finally {
    await worker.close();
    await running.catch(() => undefined);
    await queue.close();
  }
}

// `sealer schedule`'s renewal triggers: one node-cron task per job definition with a `renew` block,
// in the job's time zone, each running the same pass as `sealer renew --tenant <the job's tenant>`
// (plan, enqueue, work until settled) against the job's outbox. Like the producing triggers, a
// trigger that fires while the previous pass of that job still runs is skipped, in this process and
// across schedulers through a Redis lock.
import crypto from 'node:crypto';
import cron, { type ScheduledTask } from 'node-cron';
import type { ConnectionOptions, JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { parseMargin } from '../seal';
import { runRenewal, type RenewalSummary } from './run-renewal';

export interface RenewSchedulerOptions {
  jobs: JobDefinition[];
  connection: ConnectionOptions;
  redis: Redis;
  prefix: string;
  logger: Logger;
  jobOptions?: JobsOptions;
  defaultProviderUrl?: string;
  /** how long a renewing lock lives if its holder dies (ms); default 6 hours */
  lockTtlMs?: number;
  onRun?: (job: JobDefinition, result: RenewalSummary | 'skipped' | Error) => void;
}

const RELEASE_LUA = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export class RenewScheduler {
  private readonly tasks = new Map<string, ScheduledTask>();
  private readonly running = new Set<string>();

  constructor(private readonly options: RenewSchedulerOptions) {}

  /** The job definitions that ask for renewal. */
  get jobs(): JobDefinition[] {
    return this.options.jobs.filter((j) => j.renew);
  }

  start(): void {
    for (const job of this.jobs) {
      const task = cron.schedule(job.renew!.cron, () => this.trigger(job).catch(() => undefined), {
        timezone: job.timeZone,
        name: `${job.name}:renew`,
      });
      this.tasks.set(job.name, task);
      this.options.logger.info(
        { job: job.name, cron: job.renew!.cron, within: job.renew!.within },
        'renewal scheduled',
      );
    }
  }

  /** When the started renewal trigger of `jobName` fires next (node-cron, in the job's time zone). */
  nextRun(jobName: string): Date | null {
    return this.tasks.get(jobName)?.getNextRun() ?? null;
  }

  /** Runs one renewal pass for the job's tenant unless one is already running. */
  async trigger(job: JobDefinition): Promise<RenewalSummary | 'skipped'> {
    const { redis, prefix, logger } = this.options;
    if (!job.renew) throw new Error(`job ${job.name} has no renew block`);
    if (this.running.has(job.name)) return this.skip(job);
    const lockKey = `${prefix}:renewing:${job.name}`;
    const token = crypto.randomUUID();
    this.running.add(job.name);
    try {
      const locked = await redis.set(lockKey, token, 'PX', this.options.lockTtlMs ?? 6 * 3_600_000, 'NX');
      if (!locked) return this.skip(job);
      try {
        const summary = await runRenewal({
          outboxRoot: job.outboxRoot,
          jobs: this.options.jobs,
          tenant: job.tenant,
          withinMs: parseMargin(job.renew.within),
          connection: this.options.connection,
          prefix,
          logger,
          jobOptions: this.options.jobOptions,
          defaultProviderUrl: this.options.defaultProviderUrl,
        });
        this.options.onRun?.(job, summary);
        return summary;
      } finally {
        await redis.eval(RELEASE_LUA, 1, lockKey, token);
      }
    } catch (err) {
      logger.error({ err, job: job.name }, 'scheduled renewal failed');
      this.options.onRun?.(job, err as Error);
      throw err;
    } finally {
      this.running.delete(job.name);
    }
  }

  private skip(job: JobDefinition): 'skipped' {
    this.options.logger.warn({ job: job.name }, 'previous renewal still running; trigger skipped');
    this.options.onRun?.(job, 'skipped');
    return 'skipped';
  }

  async stop(): Promise<void> {
    for (const task of this.tasks.values()) await task.stop();
  }
}

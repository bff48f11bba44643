// `sealer schedule`: one node-cron trigger per job definition, in the job's time zone. A trigger that
// fires while the previous run of the same job is still producing is skipped (in this process, and
// across schedulers through a Redis lock).
import crypto from 'node:crypto';
import cron, { type ScheduledTask } from 'node-cron';
import type { Redis } from 'ioredis';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { produceRun, type ProduceResult } from './producer';
import type { SealQueues } from './seal-queue';

export interface SchedulerOptions {
  jobs: JobDefinition[];
  queue: SealQueues;
  redis: Redis;
  prefix: string;
  logger: Logger;
  /** how long a producing lock lives if its holder dies (ms); default 1 hour */
  lockTtlMs?: number;
  onRun?: (job: JobDefinition, result: ProduceResult | 'skipped' | Error) => void;
}

const RELEASE_LUA = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export class Scheduler {
  private readonly tasks = new Map<string, ScheduledTask>();
  private readonly producing = new Set<string>();

  constructor(private readonly options: SchedulerOptions) {}

  start(): void {
    for (const job of this.options.jobs) {
      // trigger() has logged a failed run and reported it through onRun; the task keeps its schedule.
      const task = cron.schedule(job.cron, () => this.trigger(job).catch(() => undefined), {
        timezone: job.timeZone,
        name: job.name,
      });
      this.tasks.set(job.name, task);
      this.options.logger.info({ job: job.name, cron: job.cron, timeZone: job.timeZone }, 'scheduled');
    }
  }

  /** When the started trigger of `jobName` fires next, as node-cron computed it in the job's time zone. */
  nextRun(jobName: string): Date | null {
    return this.tasks.get(jobName)?.getNextRun() ?? null;
  }

  /** Runs one production of `job` unless one is already in progress. */
  async trigger(job: JobDefinition): Promise<ProduceResult | 'skipped'> {
    const { redis, prefix, logger } = this.options;
    if (this.producing.has(job.name)) return this.skip(job);
    const lockKey = `${prefix}:producing:${job.name}`;
    const token = crypto.randomUUID();
    this.producing.add(job.name);
    try {
      const locked = await redis.set(lockKey, token, 'PX', this.options.lockTtlMs ?? 3_600_000, 'NX');
      if (!locked) return this.skip(job);
      try {
        const result = await produceRun(job, { queue: this.options.queue, redis, prefix, logger });
        this.options.onRun?.(job, result);
        return result;
      } finally {
        await redis.eval(RELEASE_LUA, 1, lockKey, token);
      }
    } catch (err) {
      logger.error({ err, job: job.name }, 'scheduled run failed');
      this.options.onRun?.(job, err as Error);
      throw err;
    } finally {
      this.producing.delete(job.name);
    }
  }

  private skip(job: JobDefinition): 'skipped' {
    this.options.logger.warn({ job: job.name }, 'previous run still producing; trigger skipped');
    this.options.onRun?.(job, 'skipped');
    return 'skipped';
  }

  async stop(): Promise<void> {
    for (const task of this.tasks.values()) await task.stop();
  }
}

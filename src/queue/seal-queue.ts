// The seal queues: one BullMQ queue per tenant (sealQueueName), so that pausing one tenant leaves the
// others sealing and a tenant with 500,000 invoices queued does not starve a tenant with 100 (each
// tenant's worker takes from its own queue). SealQueues routes by tenant and answers for all of them.
import { Queue, type ConnectionOptions, type Job, type JobsOptions, type JobType } from 'bullmq';
import IORedis, { type Redis, type RedisOptions } from 'ioredis';
import {
  sealJobData,
  sealQueueName,
  storedSealJobData,
  type SealJobData,
  type StoredSealJobData,
} from './seal-job';
import { groupBy } from '../common/group-by';

export const SEAL_JOB_OPTIONS: JobsOptions = {
  /** The job-level retry layer (the only one besides the CSC client's bounded wait on 429/503):
   * transient failures (timeouts, 5xx other than 501, an unusable provider answer, a file briefly
   * unreadable) are retried over about five minutes (up to 10, 20, 40, 80, 160 s, less up to 30 %
   * jitter so that a batch's invoices do not all return at once); what job-fate.ts calls permanent
   * fails at once. A re-run of the export re-queues what failed. */
  attempts: 6,
  backoff: { type: 'exponential', delay: 10_000, jitter: 0.3 },
  /** Redis holds what a night needs, not a history: a completed job goes at once (about 2 KB each,
   * a million a night). What it settled stays where it is durable or small: the sealed file, the
   * outbox's sealed index (which is how a re-run of the export recognises it, see producer.ts), the
   * run record's outcome and the run report. */
  removeOnComplete: true,
  /** Failed jobs stay for `sealer retry` and the dashboard, bounded per tenant queue so that a night
   * the provider was down cannot fill Redis: a month, and the newest 100,000. One pruned is still in
   * its run's failures list, and a re-run of its export queues it again. */
  removeOnFail: { age: 30 * 24 * 3600, count: 100_000 },
  /** one stack (the last attempt's) per failed job, not one per attempt */
  stackTraceLimit: 1,
};

/** The job options of a seal queue: SEAL_JOB_OPTIONS with `overrides` over them (tests shorten the
 * backoff without keeping completed jobs by accident). */
export function sealJobOptions(overrides: JobsOptions = {}): JobsOptions {
  return { ...SEAL_JOB_OPTIONS, ...overrides };
}

/** The Redis set of tenants that have a seal queue: what "every tenant" means to ops verbs. */
export function sealTenantsKey(prefix: string): string {
  return `${prefix}:seal-tenants`;
}

/** The tenant part of a seal job ID (tenant|invoice|digest). */
export function tenantOfJobId(jobId: string): string | undefined {
  const bar = jobId.indexOf('|');
  return bar > 0 ? jobId.slice(0, bar) : undefined;
}

export interface SealJobToAdd {
  name: string;
  data: SealJobData;
  opts?: JobsOptions;
}

export class SealQueues {
  private readonly queues = new Map<string, Queue<StoredSealJobData>>();

  constructor(
    readonly connection: ConnectionOptions,
    readonly prefix: string,
    private readonly jobOptions: JobsOptions = SEAL_JOB_OPTIONS,
  ) {}

  /** The tenant's queue (opened once, reused); its jobs hold StoredSealJobData (see hydrate). */
  forTenant(tenant: string): Queue<StoredSealJobData> {
    let queue = this.queues.get(tenant);
    if (!queue) {
      queue = new Queue<StoredSealJobData>(sealQueueName(tenant), {
        connection: this.connection,
        prefix: this.prefix,
        defaultJobOptions: sealJobOptions(this.jobOptions),
      });
      for (const l of this.errorListeners) queue.on('error', l);
      this.queues.set(tenant, queue);
    }
    return queue;
  }

  private own?: Redis;

  /** For the tenant registry: the connection itself when it is a client, else one of our own. */
  private async redis(): Promise<Redis> {
    const c = this.connection as unknown;
    if (c instanceof IORedis) return c;
    if (!this.own) {
      const { url, ...rest } = this.connection as RedisOptions & { url?: string };
      this.own = url === undefined ? new IORedis(rest) : new IORedis(url, rest);
      this.own.on('error', () => undefined);
    }
    return this.own;
  }

  /** Connection errors of every tenant's queue (the queues themselves log nothing). */
  on(event: 'error', listener: (err: Error) => void): this {
    this.errorListeners.push(listener);
    for (const q of this.queues.values()) q.on(event, listener);
    return this;
  }

  private readonly errorListeners: ((err: Error) => void)[] = [];

  /** Every tenant that ever had a seal job queued here, plus `also` (the job definitions' tenants). */
  async tenants(also: string[] = []): Promise<string[]> {
    const known = await (await this.redis()).smembers(sealTenantsKey(this.prefix));
    return [...new Set([...known, ...also])].sort();
  }

  /** Adds jobs to their tenants' queues (each job's `data.tenant`), one addBulk per tenant. */
  async addBulk(jobs: SealJobToAdd[]): Promise<Job<SealJobData>[]> {
    const byTenant = groupBy(jobs, (j) => j.data.tenant);
    if (byTenant.size) await (await this.redis()).sadd(sealTenantsKey(this.prefix), ...byTenant.keys());
    const added: Job<SealJobData>[] = [];
    for (const [tenant, list] of byTenant) {
      const stored = list.map((j) => ({ ...j, data: storedSealJobData(j.data) }));
      added.push(...(await this.forTenant(tenant).addBulk(stored)).map(hydrate));
    }
    return added;
  }

  /** The job with this ID (tenant|invoice|digest), from its tenant's queue, its data whole. */
  async getJob(jobId: string): Promise<Job<SealJobData> | undefined> {
    const tenant = tenantOfJobId(jobId);
    const job = tenant === undefined ? undefined : await this.forTenant(tenant).getJob(jobId);
    return job && hydrate(job);
  }

  /** Jobs in these states across every tenant's queue, their data whole. */
  async getJobs(types: JobType[]): Promise<Job<SealJobData>[]> {
    const all: Job<SealJobData>[] = [];
    for (const t of await this.tenants()) all.push(...(await this.forTenant(t).getJobs(types)).map(hydrate));
    return all;
  }

  /** Counts per state, summed over every tenant's queue. */
  async getJobCounts(...types: JobType[]): Promise<Record<string, number>> {
    const sum: Record<string, number> = {};
    for (const t of await this.tenants()) {
      for (const [k, n] of Object.entries(await this.forTenant(t).getJobCounts(...types)))
        sum[k] = (sum[k] ?? 0) + n;
    }
    return sum;
  }

  /** Jobs waiting or delayed (BullMQ's count()), summed over every tenant's queue. */
  async count(): Promise<number> {
    let n = 0;
    for (const t of await this.tenants()) n += await this.forTenant(t).count();
    return n;
  }

  async getFailedCount(): Promise<number> {
    return (await this.getJobCounts('failed')).failed ?? 0;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
    await this.own?.quit().catch(() => this.own?.disconnect());
    this.own = undefined;
  }
}

/**
 * A job read from Redis with its data made whole again (sealJobData): the same object, so that what
 * BullMQ does with it (retry, remove, moveToDelayed) stays as it is. Its data is written back whole
 * only by updateData, which the worker strips again.
 */
export function hydrate<R>(job: Job<StoredSealJobData, R>): Job<SealJobData, R> {
  job.data = sealJobData(job.id, job.data);
  return job as unknown as Job<SealJobData, R>;
}

export function openSealQueues(
  connection: ConnectionOptions,
  prefix: string,
  jobOptions: JobsOptions = SEAL_JOB_OPTIONS,
): SealQueues {
  return new SealQueues(connection, prefix, jobOptions);
}

/** Kept for callers written when there was one queue: the same object as openSealQueues. */
export const openSealQueue = openSealQueues;

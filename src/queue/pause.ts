// Pausing sealing per tenant (the others keep sealing) or for every tenant: BullMQ's own pause of the
// tenant's queue, which every worker process honours at once (jobs in hand finish; none is taken until
// resume). Pause state lives in Redis with the queue, so a restarted worker stays paused.
import type { Redis } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';
import { SealerError } from '../common/errors';
import { SealQueues } from './seal-queue';

export interface PauseTarget {
  redis: Redis;
  connection: ConnectionOptions;
  prefix: string;
  /** every tenant known from the job definitions */
  tenants: string[];
}

/** A tenant named that neither a job definition nor any queued invoice knows (a typo, most likely). */
export class UnknownTenantError extends SealerError {}

async function withQueues<T>(
  target: PauseTarget,
  tenant: string | undefined,
  fn: (queues: SealQueues, tenants: string[]) => Promise<T>,
): Promise<T> {
  const queues = new SealQueues(target.connection, target.prefix);
  try {
    const known = await queues.tenants(target.tenants);
    if (tenant !== undefined && !known.includes(tenant)) {
      throw new UnknownTenantError(
        `no tenant ${tenant}: known tenants are ${known.length ? known.join(', ') : '(none)'}`,
      );
    }
    return await fn(queues, tenant === undefined ? known : [tenant]);
  } finally {
    await queues.close();
  }
}

/** Pauses one tenant's sealing, or every tenant's; returns the tenants now paused by this call. */
export async function pauseSealing(target: PauseTarget, tenant?: string): Promise<string[]> {
  return withQueues(target, tenant, async (queues, tenants) => {
    const changed: string[] = [];
    for (const t of tenants) {
      const queue = queues.forTenant(t);
      if (await queue.isPaused()) continue;
      await queue.pause();
      changed.push(t);
    }
    return changed;
  });
}

/** Resumes one tenant's sealing, or every tenant's; returns the tenants resumed by this call. */
export async function resumeSealing(target: PauseTarget, tenant?: string): Promise<string[]> {
  return withQueues(target, tenant, async (queues, tenants) => {
    const changed: string[] = [];
    for (const t of tenants) {
      const queue = queues.forTenant(t);
      if (!(await queue.isPaused())) continue;
      await queue.resume();
      changed.push(t);
    }
    return changed;
  });
}

/** The tenants whose sealing is paused now. */
export async function pausedTenants(target: PauseTarget): Promise<string[]> {
  return withQueues(target, undefined, async (queues, tenants) => {
    const paused: string[] = [];
    for (const t of tenants) if (await queues.forTenant(t).isPaused()) paused.push(t);
    return paused;
  });
}

// Pausing sealing per tenant (the others keep sealing) or for all: BEING BUILT by the lead (per-tenant
// queues). Signatures are final; helpers code against them.
import type { Redis } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';

export interface PauseTarget {
  redis: Redis;
  connection: ConnectionOptions;
  prefix: string;
  /** every tenant known from the job definitions */
  tenants: string[];
}

/** Pauses one tenant's sealing, or every tenant's; returns the tenants now paused by this call. */
export async function pauseSealing(target: PauseTarget, tenant?: string): Promise<string[]> {
  void target;
  void tenant;
  throw new Error('pauseSealing: not built yet');
}

/** Resumes one tenant's sealing, or every tenant's; returns the tenants resumed by this call. */
export async function resumeSealing(target: PauseTarget, tenant?: string): Promise<string[]> {
  void target;
  void tenant;
  throw new Error('resumeSealing: not built yet');
}

/** The tenants whose sealing is paused now. */
export async function pausedTenants(target: PauseTarget): Promise<string[]> {
  void target;
  return [];
}

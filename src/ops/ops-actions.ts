// What the runs page's buttons do: retry one invoice or a run's failures (the queue part's retryJobs,
// as `sealer retry` does), pause or resume one tenant or all (the queue part's pause verbs). Each
// action is audited twice: a pino line (user, action, target, result) and an `ops-action` entry in the
// audit trail of every tenant it touched. No sealing logic here: it calls the back ends and reports.
import type { ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { AuditLog } from '../outbox';
import {
  pauseSealing,
  pausedTenants,
  readRunDetail,
  resumeSealing,
  retryJobs,
  type PauseTarget,
  type RetryResult,
  type RetryTarget,
} from '../queue';
import type { OpsQueues } from './board-queues';

export type OpsActionName = 'retry-invoice' | 'retry-run' | 'pause' | 'resume';

export interface ActionOutcome {
  ok: boolean;
  /** one line for the page and the audit entry's result */
  message: string;
}

export interface OpsActionsOptions {
  redis: Redis;
  connection: ConnectionOptions;
  prefix: string;
  jobs: JobDefinition[];
  logger: Logger;
  queues: OpsQueues;
}

/** Thrown for a request naming no such tenant, run or job: the page answers 400, nothing is audited. */
export class BadActionRequest extends Error {}

export class OpsActions {
  readonly tenants: string[];

  constructor(private readonly options: OpsActionsOptions) {
    this.tenants = [...new Set(options.jobs.map((j) => j.tenant))].sort();
  }

  private get pauseTarget(): PauseTarget {
    const { redis, connection, prefix } = this.options;
    return { redis, connection, prefix, tenants: this.tenants };
  }

  pausedTenants(): Promise<string[]> {
    return pausedTenants(this.pauseTarget);
  }

  /** Re-queues one failed invoice by its job ID (tenant|invoice|digest). */
  async retryInvoice(user: string, jobId: string): Promise<ActionOutcome> {
    const tenant = jobId.split('|')[0] ?? '';
    if (jobId.split('|').length !== 3 || !this.tenants.includes(tenant)) {
      throw new BadActionRequest(`no seal job ${jobId} of a known tenant`);
    }
    return this.audited(user, 'retry-invoice', jobId, [tenant], async () =>
      retryOutcome(await this.retry({ jobIds: [jobId] })),
    );
  }

  /** Re-queues every failed invoice of one run. */
  async retryRun(user: string, runId: string): Promise<ActionOutcome> {
    const run = await readRunDetail(this.options.redis, this.options.prefix, runId);
    if (!run?.tenant || !this.tenants.includes(run.tenant))
      throw new BadActionRequest(`no run ${runId} is recorded`);
    const tenant = run.tenant;
    return this.audited(user, 'retry-run', runId, [tenant], async () =>
      retryOutcome(await this.retry({ runId, tenant })),
    );
  }

  /** Pauses one tenant's sealing, or every tenant's when `tenant` is undefined. */
  pause(user: string, tenant?: string): Promise<ActionOutcome> {
    return this.pauseOrResume(user, 'pause', tenant);
  }

  resume(user: string, tenant?: string): Promise<ActionOutcome> {
    return this.pauseOrResume(user, 'resume', tenant);
  }

  private async pauseOrResume(
    user: string,
    action: 'pause' | 'resume',
    tenant?: string,
  ): Promise<ActionOutcome> {
    if (tenant !== undefined && !this.tenants.includes(tenant))
      throw new BadActionRequest(`no tenant ${tenant}`);
    const touched = tenant === undefined ? this.tenants : [tenant];
    return this.audited(user, action, tenant ?? 'all', touched, async () => {
      const verb = action === 'pause' ? pauseSealing : resumeSealing;
      const changed = await verb(this.pauseTarget, tenant);
      const did = action === 'pause' ? 'paused' : 'resumed';
      return {
        ok: true,
        message: changed.length ? `${did}: ${changed.join(', ')}` : `nothing ${did} (already ${did})`,
      };
    });
  }

  /**
   * The one call into retryJobs, as `sealer retry` makes it: the queue part's SealQueues finds each
   * job in its tenant's queue.
   */
  private retry(target: RetryTarget): Promise<RetryResult> {
    const { redis, prefix, jobs, queues } = this.options;
    return retryJobs({ redis, prefix, jobs, queue: queues.seal }, target);
  }

  /** Runs an action, then logs it and appends it to each touched tenant's audit trail(s). */
  private async audited(
    user: string,
    action: OpsActionName,
    target: string,
    tenants: string[],
    act: () => Promise<ActionOutcome>,
  ): Promise<ActionOutcome> {
    let outcome: ActionOutcome;
    try {
      outcome = await act();
    } catch (err) {
      outcome = { ok: false, message: `error: ${(err as Error).message}` };
    }
    const { logger, jobs } = this.options;
    logger.info({ user, action, target, result: outcome.message, ok: outcome.ok }, 'ops action');
    for (const tenant of tenants) {
      const roots = [...new Set(jobs.filter((j) => j.tenant === tenant).map((j) => j.outboxRoot))];
      for (const root of roots) {
        try {
          await AuditLog.forTenant(root, tenant).append({
            type: 'ops-action',
            action,
            by: user,
            target,
            result: outcome.message,
          });
        } catch (err) {
          // The action happened; the page must say its audit entry is missing rather than hide it.
          logger.error(
            { user, action, target, tenant, err: (err as Error).message },
            'ops action not audited',
          );
          outcome = { ok: false, message: `${outcome.message} (audit entry for ${tenant} NOT written)` };
        }
      }
    }
    return outcome;
  }
}

function retryOutcome(r: RetryResult): ActionOutcome {
  const parts = [`requeued ${r.requeued.length}`];
  if (r.alreadySealed.length) parts.push(`already sealed ${r.alreadySealed.length}`);
  if (r.notFailed.length)
    parts.push(
      `not failed ${r.notFailed.length} (${r.notFailed.map((n) => `${n.invoice}: ${n.state}`).join(', ')})`,
    );
  if (r.unknown.length) parts.push(`unknown ${r.unknown.length}`);
  const names = r.requeued.map((i) => i.invoice);
  return {
    ok: r.requeued.length + r.alreadySealed.length > 0 && r.unknown.length + r.notFailed.length === 0,
    message:
      parts.join(', ') +
      (names.length ? `: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''}` : ''),
  };
}

// Prometheus metrics of one sealer process: counters and histograms fed by the sealing parts' events
// (SealingObserver), and gauges read from Redis at scrape time (queue depth per tenant, approvals left).
// Its own registry, never prom-client's global one, so two instances (tests, worker + dashboard in one
// process) never collide. Label values are tenant names and fixed kinds only: an invoice number or run
// ID as a label would make a new series per invoice (unbounded cardinality).
import { Queue } from 'bullmq';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SealingEvent, SealingObserver } from '../common/sealing-events';
import type { ApprovalStatus } from '../custody';
import type { FailureKind } from '../queue/job-fate';
import { sealQueueName, type QueueConnection } from '../queue/seal-job';
import { sealLevelSchema } from '../jobs/job-definition';
import { withTimeout } from './with-timeout';

/** The queue states a scrape reports (see queueCounts for `paused`). */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'paused'] as const;

// A Record, so that a FailureKind added in src/queue fails to compile here until it is listed.
const FAILURE_KINDS: Record<FailureKind, true> = {
  refused: true,
  throttled: true,
  transient: true,
  unsealable: true,
  config: true,
  conflict: true,
  'approval-needed': true,
  unknown: true,
};
const LEVELS: ReadonlySet<string> = new Set(sealLevelSchema.options);
/** The job definitions' rule for tenant names; anything else is not a tenant. */
const TENANT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** signHash and TSA round trips: 50 ms on loopback to 30 s (the default request timeout). */
export const LATENCY_BUCKETS = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30];
/** hashes per signHash call: a job's batchSize is 1..1000 */
export const BATCH_SIZE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
/** one invoice from taken to delivered: prepare, waiting for its batch, sign, timestamps, finish */
export const SEAL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface SealerMetricsOptions {
  /** Tenants of the job definitions: whose queues are counted, and the only tenant label values
   * (others become `other`). Without it, any name that is a valid tenant name is used as it is. */
  tenants?: readonly string[];
  /** sealer_queue_depth: each tenant's seal queue (sealQueueName) on this connection and prefix. One
   * BullMQ Queue per tenant, opened at the first scrape, closed by close(). */
  queues?: QueueConnection;
  /** sealer_approvals_remaining: the parked approvals (ParkedApprovals, or anything with its list()). */
  approvals?: { list(): Promise<ApprovalStatus[]> };
  /** How long a scrape waits for Redis for each gauge before leaving it out; default 1000 ms. */
  scrapeTimeoutMs?: number;
  /** Told of the queue connections' errors (BullMQ emits them; an unheard 'error' event would throw). */
  onError?: (err: Error) => void;
  /** Node process metrics (CPU, memory, event loop lag, GC), prefixed `sealer_`; default true. */
  defaultMetrics?: boolean;
  /** clock for approval expiry; default Date.now */
  now?: () => number;
}

type Counts = Record<string, number>;

const CLOSE_TIMEOUT_MS = 2000;

export class SealerMetrics {
  readonly registry = new Registry();
  private readonly tenants?: ReadonlySet<string>;
  private readonly scrapeTimeoutMs: number;
  private readonly now: () => number;
  private readonly queues = new Map<string, Queue>();
  /** a read still under way from an earlier scrape: the next scrape waits on it instead of piling a
   * new command on a connection whose Redis is down */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private closed = false;

  private readonly sealed: Counter<'tenant' | 'level'>;
  private readonly failed: Counter<'tenant' | 'kind'>;
  private readonly signHashSeconds: Histogram<'tenant' | 'outcome'>;
  private readonly batchSize: Histogram<'tenant'>;
  private readonly authorizations: Counter<'tenant'>;
  private readonly signaturesAuthorized: Counter<'tenant'>;
  private readonly signaturesUnused: Counter<'tenant'>;
  private readonly timestampSeconds: Histogram<'source' | 'outcome'>;
  private readonly sealSeconds: Histogram<'tenant' | 'level'>;
  private readonly scrapeErrors: Counter<'gauge'>;
  private readonly queueDepth?: Gauge<'tenant' | 'state'>;
  private readonly approvalsRemaining?: Gauge<'tenant' | 'credential'>;
  /** the Redis reads of the scrape under way, shared by every metric of that scrape */
  private refreshing?: Promise<void>;

  constructor(private readonly options: SealerMetricsOptions = {}) {
    this.tenants = options.tenants ? new Set(options.tenants) : undefined;
    this.scrapeTimeoutMs = options.scrapeTimeoutMs ?? 1000;
    this.now = options.now ?? Date.now;
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'sealer_' });

    this.sealed = new Counter({
      name: 'sealer_invoices_sealed_total',
      help: 'Invoices sealed and delivered, by tenant and PAdES level',
      labelNames: ['tenant', 'level'],
      registers,
    });
    this.failed = new Counter({
      name: 'sealer_invoices_failed_total',
      help: 'Invoices failed for good, by tenant and failure kind',
      labelNames: ['tenant', 'kind'],
      registers,
    });
    this.signHashSeconds = new Histogram({
      name: 'sealer_sign_hash_seconds',
      help: 'Duration of signatures/signHash calls, by tenant and outcome (ok, error)',
      labelNames: ['tenant', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: 'sealer_sign_hash_batch_size',
      help: 'Hashes per signatures/signHash call, by tenant',
      labelNames: ['tenant'],
      buckets: BATCH_SIZE_BUCKETS,
      registers,
    });
    this.authorizations = new Counter({
      name: 'sealer_authorizations_total',
      help: 'credentials/authorize calls (or credential-token grants), by tenant',
      labelNames: ['tenant'],
      registers,
    });
    this.signaturesAuthorized = new Counter({
      name: 'sealer_signatures_authorized_total',
      help: 'Signatures the authorisations covered (numSignatures), by tenant',
      labelNames: ['tenant'],
      registers,
    });
    this.signaturesUnused = new Counter({
      name: 'sealer_signatures_unused_total',
      help: 'Authorised signatures that will never be used (expired, retired, closed), by tenant',
      labelNames: ['tenant'],
      registers,
    });
    this.timestampSeconds = new Histogram({
      name: 'sealer_timestamp_seconds',
      help: 'Duration of RFC 3161 timestamp requests, by source (tsa, provider) and outcome (ok, error)',
      labelNames: ['source', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.sealSeconds = new Histogram({
      name: 'sealer_seal_seconds',
      help: 'Time to seal one invoice, by tenant and PAdES level',
      labelNames: ['tenant', 'level'],
      buckets: SEAL_BUCKETS,
      registers,
    });
    this.scrapeErrors = new Counter({
      name: 'sealer_scrape_errors_total',
      help: 'Scrapes that left a gauge out because Redis did not answer, by gauge',
      labelNames: ['gauge'],
      registers,
      // prom-client reads every metric of a scrape at once: without waiting for the gauges' reads, an
      // error would show one scrape late.
      collect: () => this.refresh(),
    });

    if (options.queues && options.tenants?.length) {
      this.queueDepth = new Gauge({
        name: 'sealer_queue_depth',
        help: "Jobs in each tenant's seal queue, by state (read at scrape time)",
        labelNames: ['tenant', 'state'],
        registers,
        collect: () => this.refresh(),
      });
    }
    if (options.approvals) {
      this.approvalsRemaining = new Gauge({
        name: 'sealer_approvals_remaining',
        help: 'Signatures left on the parked approval of each credential (0 once expired; read at scrape time)',
        labelNames: ['tenant', 'credential'],
        registers,
        collect: () => this.refresh(),
      });
    }
  }

  /** The SealingObserver to give the sealing parts; never throws. */
  readonly observe: SealingObserver = (event: SealingEvent): void => {
    switch (event.type) {
      case 'signHash': {
        const tenant = this.tenant(event.tenant);
        this.signHashSeconds.observe({ tenant, outcome: outcome(event.ok) }, seconds(event.ms));
        if (Number.isFinite(event.hashes) && event.hashes >= 0)
          this.batchSize.observe({ tenant }, event.hashes);
        return;
      }
      case 'authorize': {
        const tenant = this.tenant(event.tenant);
        this.authorizations.inc({ tenant });
        this.signaturesAuthorized.inc({ tenant }, count(event.numSignatures));
        return;
      }
      case 'signaturesUnused':
        this.signaturesUnused.inc({ tenant: this.tenant(event.tenant) }, count(event.count));
        return;
      case 'timestamp':
        this.timestampSeconds.observe(
          {
            source: event.source === 'tsa' || event.source === 'provider' ? event.source : 'unknown',
            outcome: outcome(event.ok),
          },
          seconds(event.ms),
        );
        return;
      case 'sealed': {
        const labels = {
          tenant: this.tenant(event.tenant),
          level: LEVELS.has(event.level) ? event.level : 'unknown',
        };
        this.sealed.inc(labels);
        this.sealSeconds.observe(labels, seconds(event.ms));
        return;
      }
      case 'failed':
        this.failed.inc({
          tenant: this.tenant(event.tenant),
          kind: Object.hasOwn(FAILURE_KINDS, event.kind) ? event.kind : 'unknown',
        });
        return;
    }
  };

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text (what GET /metrics answers); never rejects for Redis being down. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** Closes the queues opened for scrapes. */
  async close(): Promise<void> {
    this.closed = true;
    const queues = [...this.queues.values()];
    this.queues.clear();
    // With Redis down, close() may wait for a connection that never comes: disconnect after a while.
    await Promise.allSettled(
      queues.map((q) =>
        withTimeout(q.close(), CLOSE_TIMEOUT_MS, 'closing a queue').catch(async () => q.disconnect()),
      ),
    );
  }

  private tenant(name: string): string {
    if (this.tenants) return this.tenants.has(name) ? name : 'other';
    return TENANT_NAME.test(name) ? name : 'other';
  }

  private queue(tenant: string): Queue {
    let q = this.queues.get(tenant);
    if (!q) {
      const { connection, prefix } = this.options.queues!;
      q = new Queue(sealQueueName(tenant), { connection, prefix });
      q.on('error', (err: Error) => this.options.onError?.(err));
      this.queues.set(tenant, q);
    }
    return q;
  }

  /** One read per key at a time, each bounded by the scrape timeout. */
  private read<T>(key: string, start: () => Promise<T>): Promise<T> {
    let p = this.inFlight.get(key) as Promise<T> | undefined;
    if (!p) {
      // started inside a promise, so that even a synchronous throw (a Queue that cannot be made) is
      // counted as a scrape error like any other
      p = Promise.resolve().then(start);
      this.inFlight.set(key, p);
      const forget = (): void => {
        if (this.inFlight.get(key) === p) this.inFlight.delete(key);
      };
      p.then(forget, forget);
    }
    return withTimeout(p, this.scrapeTimeoutMs, `reading ${key} from Redis`);
  }

  /** Reads the gauges from Redis, once for all the metrics that one scrape collects side by side. */
  private refresh(): Promise<void> {
    this.refreshing ??= Promise.all([
      this.queueDepth && this.collectQueueDepth(this.queueDepth),
      this.approvalsRemaining && this.collectApprovals(this.approvalsRemaining),
    ]).then(
      () => {
        this.refreshing = undefined;
      },
      () => {
        this.refreshing = undefined;
      },
    );
    return this.refreshing;
  }

  private async collectQueueDepth(gauge: Gauge<'tenant' | 'state'>): Promise<void> {
    gauge.reset();
    if (this.closed) return;
    const tenants = [...(this.tenants ?? [])];
    const results = await Promise.allSettled(
      tenants.map((t) => this.read<Counts>(`queue:${t}`, () => queueCounts(this.queue(t)))),
    );
    let failed = false;
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        failed = true;
        return;
      }
      for (const state of QUEUE_STATES) gauge.set({ tenant: tenants[i]!, state }, r.value[state] ?? 0);
    });
    if (failed) this.scrapeErrors.inc({ gauge: 'sealer_queue_depth' });
  }

  private async collectApprovals(gauge: Gauge<'tenant' | 'credential'>): Promise<void> {
    gauge.reset();
    let list: ApprovalStatus[];
    try {
      list = await this.read('approvals', () => this.options.approvals!.list());
    } catch {
      this.scrapeErrors.inc({ gauge: 'sealer_approvals_remaining' });
      return;
    }
    const now = this.now();
    for (const a of list) {
      // Another deployment's tenants under the same prefix are not this process's to report.
      if (this.tenants ? !this.tenants.has(a.tenant) : !TENANT_NAME.test(a.tenant)) continue;
      // An expired approval's record stays a day for the morning report, but nothing can be drawn.
      gauge.set(
        { tenant: a.tenant, credential: a.credentialId },
        a.expiresAt > now ? Math.max(0, a.remaining) : 0,
      );
    }
  }
}

/**
 * One tenant's queue by QUEUE_STATES. BullMQ 6 keeps a paused queue's jobs in its wait list (there is
 * no paused list any more), so while the queue is paused its waiting jobs are reported as `paused`;
 * prioritized jobs are waiting jobs too. The states still add up to the jobs in the queue.
 */
async function queueCounts(queue: Queue): Promise<Counts> {
  const [c, paused] = await Promise.all([
    queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
    queue.isPaused(),
  ]);
  const waiting = (c.waiting ?? 0) + (c.prioritized ?? 0);
  return {
    waiting: paused ? 0 : waiting,
    paused: paused ? waiting : 0,
    active: c.active ?? 0,
    delayed: c.delayed ?? 0,
    failed: c.failed ?? 0,
  };
}

function outcome(ok: boolean): 'ok' | 'error' {
  return ok ? 'ok' : 'error';
}

function seconds(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? ms / 1000 : 0;
}

function count(n: number): number {
  return Number.isFinite(n) && n > 0 ? n : 0;
}

// /healthz for orchestrators: does Redis answer PING, does each provider answer at all, is the prepare
// thread pool alive. Every check has its own deadline and they run side by side, so the answer comes
// within about one deadline even when a peer accepts a connection and never replies.
import fs from 'node:fs/promises';
import IORedis from 'ioredis';
import { CscError } from '../csc/csc-error';
import { extraCaDispatcher, postJson } from '../csc/http';
import type { JobDefinition } from '../jobs/job-definition';
import { TimeoutError, withTimeout } from './with-timeout';

export type HealthCheckName = 'redis' | 'provider' | 'pool';

export interface HealthCheck {
  name: HealthCheckName;
  ok: boolean;
  /** what was seen: a reply, or why the check failed */
  detail?: string;
  /** the address checked (without credentials): the Redis URL or the provider's CSC base URL */
  target?: string;
  ms: number;
}

export interface HealthReport {
  ok: boolean;
  checks: HealthCheck[];
}

/** A provider to reach: its CSC base URL (as in signing.providerUrl) and the job's extra CA, if any. */
export interface ProviderTarget {
  url: string;
  /** PEM file of an extra CA for the provider's TLS (signing.caFile, resolved) */
  caFile?: string;
}

export interface HealthOptions {
  /** Redis to PING, through a fresh connection per check (one that is down must not hang on a
   * shared client's offline queue); no Redis check without it */
  redisUrl?: string;
  /** each distinct provider (providerTargets of the job definitions) */
  providers?: readonly ProviderTarget[];
  /** the prepare pool's liveness, e.g. `() => pool.alive(timeoutMs)`; no pool check without it */
  poolAlive?: () => Promise<boolean>;
  /** deadline of each check, in ms; default 2500, so /healthz answers within about 3 s */
  timeoutMs?: number;
}

export const DEFAULT_HEALTH_TIMEOUT_MS = 2500;

/** The distinct providers of the job definitions; a job without signing.providerUrl uses the default. */
export function providerTargets(
  jobs: readonly Pick<JobDefinition, 'signing' | 'caFilePath'>[],
  defaultProviderUrl?: string,
): ProviderTarget[] {
  const byUrl = new Map<string, ProviderTarget>();
  for (const job of jobs) {
    const raw = job.signing.providerUrl ?? defaultProviderUrl;
    if (!raw) continue;
    const url = raw.replace(/\/+$/, '');
    const known = byUrl.get(url);
    if (!known) byUrl.set(url, { url, ...(job.caFilePath ? { caFile: job.caFilePath } : {}) });
    else if (!known.caFile && job.caFilePath) known.caFile = job.caFilePath;
  }
  return [...byUrl.values()];
}

export async function checkHealth(opts: HealthOptions): Promise<HealthReport> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  const checks: Promise<HealthCheck>[] = [];
  if (opts.redisUrl !== undefined) {
    const url = opts.redisUrl;
    checks.push(timed('redis', redact(url), timeoutMs, () => pingRedis(url, timeoutMs)));
  }
  for (const p of opts.providers ?? []) {
    checks.push(timed('provider', redact(p.url), timeoutMs, () => reachProvider(p, timeoutMs)));
  }
  if (opts.poolAlive) {
    const alive = opts.poolAlive;
    checks.push(
      timed('pool', undefined, timeoutMs, async () => {
        if (!(await alive())) throw new Error('no thread finished a trivial task in time');
        return 'a thread answered';
      }),
    );
  }
  const done = await Promise.all(checks);
  return { ok: done.every((c) => c.ok), checks: done };
}

/** Runs one check under its deadline; never rejects. */
async function timed(
  name: HealthCheckName,
  target: string | undefined,
  timeoutMs: number,
  run: () => Promise<string>,
): Promise<HealthCheck> {
  const start = performance.now();
  const base = { name, ...(target === undefined ? {} : { target }) };
  try {
    const detail = await withTimeout(run(), timeoutMs, name);
    return { ...base, ok: true, detail, ms: Math.round(performance.now() - start) };
  } catch (err) {
    const detail = err instanceof TimeoutError ? `no answer within ${timeoutMs} ms` : (err as Error).message;
    return { ...base, ok: false, detail, ms: Math.round(performance.now() - start) };
  }
}

async function pingRedis(url: string, timeoutMs: number): Promise<string> {
  const probe = new IORedis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // connect() itself only says "Connection is closed"; the socket's error says why (ECONNREFUSED, ...)
  let socketError: NodeJS.ErrnoException | undefined;
  probe.on('error', (err: NodeJS.ErrnoException) => (socketError ??= err));
  try {
    await probe.connect();
    const reply = await probe.ping();
    if (reply !== 'PONG') throw new Error(`PING answered ${reply}`);
    return 'PONG';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? socketError?.code;
    throw new Error(`Redis does not answer PING${code ? ` (${code})` : `: ${(err as Error).message}`}`, {
      cause: err,
    });
  } finally {
    // Also when the deadline passed first: the pending connect or PING then fails, unheard.
    probe.disconnect();
  }
}

/**
 * POST <base>/info, the one CSC call that needs no token (what CscClient.info sends). Any HTTP answer,
 * 4xx and 5xx included, means the provider is reachable; no answer, a refused connection or a TLS
 * certificate we do not trust means it is not.
 */
async function reachProvider(target: ProviderTarget, timeoutMs: number): Promise<string> {
  // Shared per CA (../common/http-dispatcher.ts): repeated /healthz probes reuse one agent.
  const dispatcher = target.caFile ? extraCaDispatcher(await fs.readFile(target.caFile)) : undefined;
  try {
    const { status } = await postJson(
      `${target.url}/info`,
      {},
      {
        endpoint: 'info',
        timeoutMs,
        retry: { maxRetries: 0, maxDelayMs: 0 },
        ...(dispatcher ? { dispatcher } : {}),
      },
    );
    return `info answered HTTP ${status}`;
  } catch (err) {
    if (err instanceof CscError && err.status !== undefined) {
      return `reachable; info answered HTTP ${err.status}${err.error ? ` (${err.error})` : ''}`;
    }
    throw new Error(`unreachable: ${(err as Error).message}`, { cause: err });
  }
}

/** A URL as it may be shown: a password (Redis URLs carry one) or user name never reaches /healthz. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    if (u.username) u.username = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparsable URL)';
  }
}

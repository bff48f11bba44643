import { ParkedApprovals } from '../../custody';
import { SealWorker, SigningContexts } from '../../queue';
import { checkHealth, providerTargets } from '../../ops/health';
import { startMetricsServer } from '../../ops/metrics-server';
import { SealerMetrics } from '../../ops/sealer-metrics';
import { RedisHealth } from '../../common/redis-health';
import { sealerCommandLine } from '../../common/sealer-command';
import { describeProblem, openContext, type CommonOptions } from '../context';

export interface WorkOptions extends CommonOptions {
  concurrency: number;
  awaitingSignature?: number;
  threads?: number;
  providerUrl?: string;
  /** how long a job's lock lasts without renewal (ms) */
  lockDuration?: number;
  /** how often stalled jobs are looked for (ms) */
  stalledInterval?: number;
  /** seconds SIGTERM/SIGINT waits for the jobs in hand before the process exits anyway */
  grace: number;
  maxInputMb?: number;
  maxInflatedMb?: number;
  maxHeldMb?: number;
  prepareHeapMb?: number;
  prepareDeadlineSec?: number;
  /** serve /metrics and /healthz on this port */
  metricsPort?: number;
  metricsHost?: string;
}

export async function workCommand(opts: WorkOptions): Promise<void> {
  const ctx = await openContext({ ...opts, waitForRedisMs: 30_000 });
  const health = new RedisHealth(ctx.logger);
  health.watch(ctx.redis);
  const defaultProviderUrl = opts.providerUrl ?? process.env.SEALER_PROVIDER_URL;
  // A job whose definition did not load, or whose secrets, factors or CA file cannot be read, is
  // named and left out; its queued invoices wait (delayed, not failed) for a worker that has it.
  const preflight = await new SigningContexts({ logger: ctx.logger, defaultProviderUrl }).preflight(ctx.jobs);
  const unavailable = new Map<string, string>(ctx.problems.map((p) => [p.job, p.reason]));
  for (const p of preflight) {
    unavailable.set(p.job.name, p.reason);
    ctx.logger.error({ job: p.job.name, reason: p.reason }, 'job skipped: cannot seal with it');
    console.error(`job ${p.job.name} skipped: ${p.reason}`);
  }
  for (const p of ctx.problems) console.error(describeProblem(p));
  const jobs = ctx.jobs.filter((j) => !unavailable.has(j.name));
  if (jobs.length === 0) {
    await ctx.release();
    throw new Error(
      `cannot start: no job definition can be used${unavailable.size ? ` (${unavailable.size} skipped, named above)` : ''}`,
    );
  }
  const metrics =
    opts.metricsPort === undefined
      ? undefined
      : new SealerMetrics({
          tenants: [...new Set(ctx.jobs.map((j) => j.tenant))],
          queues: { connection: ctx.connection, prefix: ctx.prefix },
          approvals: new ParkedApprovals(ctx.redis, ctx.prefix),
          onError: (err) => health.error(err, 'metrics'),
        });
  const worker = new SealWorker({
    observe: metrics?.observe,
    connection: ctx.connection,
    redis: ctx.redis,
    prefix: ctx.prefix,
    jobs,
    unavailableJobs: unavailable,
    // A tenant whose only definition cannot be used now: its invoices are taken and told to wait.
    extraTenants: preflight.map((p) => p.job.tenant),
    logger: ctx.logger,
    concurrency: opts.concurrency,
    ...(opts.awaitingSignature === undefined ? {} : { awaitingSignature: opts.awaitingSignature }),
    ...(opts.maxHeldMb === undefined ? {} : { maxHeldBytes: opts.maxHeldMb * 1024 * 1024 }),
    threads: opts.threads,
    defaultProviderUrl,
    prepareLimits: {
      ...(opts.maxInputMb === undefined ? {} : { maxInputBytes: opts.maxInputMb * 1024 * 1024 }),
      ...(opts.maxInflatedMb === undefined ? {} : { maxInflatedBytes: opts.maxInflatedMb * 1024 * 1024 }),
      ...(opts.prepareHeapMb === undefined ? {} : { maxHeapMb: opts.prepareHeapMb }),
      ...(opts.prepareDeadlineSec === undefined ? {} : { deadlineMs: opts.prepareDeadlineSec * 1000 }),
    },
    lockDurationMs: opts.lockDuration,
    stalledIntervalMs: opts.stalledInterval,
    health,
  });
  let metricsServer: Awaited<ReturnType<typeof startMetricsServer>> | undefined;
  try {
    metricsServer =
      metrics &&
      (await startMetricsServer({
        host: opts.metricsHost ?? '127.0.0.1',
        port: opts.metricsPort!,
        metrics,
        health: () =>
          checkHealth({
            redisUrl: ctx.endpoint.url,
            providers: providerTargets(jobs, defaultProviderUrl),
            poolAlive: () => worker.poolAlive(2000),
          }),
      }));
  } catch (err) {
    // A port already taken: say so and exit, releasing what was opened (nothing was taken yet).
    await worker.close();
    await metrics?.close();
    await ctx.release();
    throw new Error(`cannot serve /metrics on port ${opts.metricsPort}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (metricsServer) {
    ctx.logger.info({ url: metricsServer.url }, 'metrics and health served');
    console.error(`metrics: ${metricsServer.url}/metrics, health: ${metricsServer.url}/healthz`);
  }
  let sealed = 0;
  let failed = 0;
  worker.onJob('completed', () => sealed++);
  worker.onJob('failed', () => failed++);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    ctx.logger.info({ signal, inFlight: worker.inFlight().length, graceSec: opts.grace }, 'stopping');
    // Jobs in hand normally finish in seconds; with Redis down they cannot finish at all. After the
    // grace period the process exits and says what it left: those jobs' locks expire and another
    // worker (or this one, restarted) seals them, once.
    const timer = setTimeout(() => {
      const left = worker.inFlight();
      ctx.logger.error(
        {
          unfinished: left.length,
          invoices: left.slice(0, 20).map((l) => l.invoice),
          redisDown: health.down,
        },
        'grace period over; exiting with jobs unfinished (they run again after their lock expires)',
      );
      console.error(
        `worker stopped after ${opts.grace} s grace: ${left.length} invoice(s) unfinished` +
          `${health.down ? ' (Redis unreachable)' : ''}; they run again once their lock expires` +
          (left.length
            ? `: ${left
                .slice(0, 10)
                .map((l) => l.invoice)
                .join(', ')}${left.length > 10 ? ', ...' : ''}`
            : ''),
      );
      // pino writes asynchronously: exit once what was logged is written, or after 2 s at most (a
      // blocked stderr must not hold the exit that the grace period promised).
      const exit = () => process.exit(3);
      setTimeout(exit, 2000);
      ctx.logger.flush(exit);
    }, opts.grace * 1000);
    timer.unref();
    worker.close().catch((err: unknown) => ctx.logger.error({ err: (err as Error).message }, 'close failed'));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  ctx.logger.info(
    {
      jobs: ctx.jobs.map((j) => j.name),
      concurrency: opts.concurrency,
      awaitingSignature: worker.awaitingSignature,
    },
    'worker started',
  );
  try {
    await worker.run();
  } finally {
    await worker.close();
    await metricsServer?.close();
    await metrics?.close();
    // What this process drew from the provider; unused signatures are billed all the same.
    for (const c of await worker.contexts.all()) {
      const line = {
        tenant: c.tenant,
        credentialId: c.credentialId,
        custody: c.custody,
        signHashCalls: c.client.calls.signHash,
        authorisations: c.client.calls.authorize,
        signatures: c.signer.stats().signatures,
        unusedSignatures: c.sadManager.approvalBased ? undefined : c.sadManager.unusedSignatures(),
      };
      ctx.logger.info(line, 'credential used');
      console.error(
        `credential ${c.credentialId} (tenant ${c.tenant}, custody ${c.custody}): ${line.signatures} signatures in ${line.signHashCalls} signHash calls, ${line.authorisations} authorisation(s)` +
          (line.unusedSignatures === undefined
            ? ` (approval: see \`${sealerCommandLine('runs')}\` for what is left)`
            : `, ${line.unusedSignatures} signatures left unused on SADs`),
      );
    }
    ctx.logger.info({ completed: sealed, failedAttempts: failed }, 'worker stopped');
    console.error(`worker stopped: ${sealed} jobs completed, ${failed} failed attempts`);
    await ctx.release();
  }
}

import { SealWorker } from '../../queue';
import { RedisHealth } from '../../common/redis-health';
import { openContext, type CommonOptions } from '../context';

export interface WorkOptions extends CommonOptions {
  concurrency: number;
  threads?: number;
  providerUrl?: string;
  /** how long a job's lock lasts without renewal (ms) */
  lockDuration?: number;
  /** how often stalled jobs are looked for (ms) */
  stalledInterval?: number;
  /** seconds SIGTERM/SIGINT waits for the jobs in hand before the process exits anyway */
  grace: number;
}

export async function workCommand(opts: WorkOptions): Promise<void> {
  const ctx = await openContext({ ...opts, waitForRedisMs: 30_000 });
  const health = new RedisHealth(ctx.logger);
  health.watch(ctx.redis);
  const worker = new SealWorker({
    connection: ctx.connection,
    redis: ctx.redis,
    prefix: ctx.prefix,
    jobs: ctx.jobs,
    logger: ctx.logger,
    concurrency: opts.concurrency,
    threads: opts.threads,
    defaultProviderUrl: opts.providerUrl ?? process.env.SEALER_PROVIDER_URL,
    lockDurationMs: opts.lockDuration,
    stalledIntervalMs: opts.stalledInterval,
    health,
  });
  const problems = await worker.contexts.preflight(ctx.jobs);
  if (problems.length) {
    await worker.close();
    await ctx.release();
    throw new Error(`cannot start: ${problems.join('; ')}`);
  }
  let sealed = 0;
  let failed = 0;
  worker.worker.on('completed', () => sealed++);
  worker.worker.on('failed', () => failed++);
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
      ctx.logger.flush();
      process.exit(3);
    }, opts.grace * 1000);
    timer.unref();
    worker.close().catch((err: unknown) => ctx.logger.error({ err: (err as Error).message }, 'close failed'));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  ctx.logger.info({ jobs: ctx.jobs.map((j) => j.name), concurrency: opts.concurrency }, 'worker started');
  try {
    await worker.run();
  } finally {
    await worker.close();
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
            ? ' (approval: see `sealer runs` for what is left)'
            : `, ${line.unusedSignatures} signatures left unused on SADs`),
      );
    }
    ctx.logger.info({ completed: sealed, failedAttempts: failed }, 'worker stopped');
    console.error(`worker stopped: ${sealed} jobs completed, ${failed} failed attempts`);
    await ctx.release();
  }
}

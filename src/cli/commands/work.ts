import { SealWorker } from '../../queue';
import { openContext, type CommonOptions } from '../context';

export async function workCommand(
  opts: CommonOptions & { concurrency: number; threads?: number; providerUrl?: string },
): Promise<void> {
  const ctx = await openContext({ ...opts, waitForRedisMs: 30_000 });
  const worker = new SealWorker({
    connection: ctx.connection,
    redis: ctx.redis,
    prefix: ctx.prefix,
    jobs: ctx.jobs,
    logger: ctx.logger,
    concurrency: opts.concurrency,
    threads: opts.threads,
    defaultProviderUrl: opts.providerUrl ?? process.env.SEALER_PROVIDER_URL,
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
  const stop = () => void worker.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
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

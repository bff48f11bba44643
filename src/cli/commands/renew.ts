// `sealer renew --outbox DIR [--tenant T] [--within 365d] [--dry-run]`: archive renewal of delivered
// files whose newest document timestamp's TSA certificate expires within the margin, or that lack
// validation data or a document timestamp. Plans, enqueues one `renew` job per file, works them until
// they settle and prints a summary; a dry run prints the plan and touches nothing (not even Redis).
import path from 'node:path';
import { loadJobSet } from '../../jobs';
import { runRenewal, summaryLine, type RenewalOutcome } from '../../queue';
import { parseMargin } from '../../seal';
import {
  describeProblem,
  loggerFor,
  openContext,
  processIo,
  type CliIo,
  type CommonOptions,
} from '../context';

export interface RenewOptions extends CommonOptions {
  outbox: string;
  tenant?: string;
  within: string;
  dryRun?: boolean;
  providerUrl?: string;
}

function planLine(item: RenewalOutcome): string {
  const expiry = item.tsaCertificateExpiry
    ? ` [TSA certificate expires ${item.tsaCertificateExpiry.toISOString()}]`
    : '';
  return `${item.tenant} ${item.invoiceNumber} ${item.file}: ${item.reason}${expiry}`;
}

function outcomeLine(item: RenewalOutcome): string {
  if (item.outcome === 'failed')
    return `${item.tenant} ${item.invoiceNumber}: FAILED: ${item.error ?? 'unknown'}`;
  const r = item.result;
  const stamp = r?.documentTimestampTime
    ? ` (document timestamp ${r.documentTimestampTime} by ${r.tsa})`
    : '';
  return `${item.tenant} ${item.invoiceNumber}: ${item.outcome}: ${r?.reason ?? item.reason}${stamp}`;
}

export async function renewCommand(opts: RenewOptions, io: CliIo = processIo): Promise<void> {
  const withinMs = parseMargin(opts.within);
  const outboxRoot = path.resolve(opts.outbox);
  const logger = loggerFor(io);
  if (opts.dryRun) {
    const { jobs, problems } = await loadJobSet(path.resolve(opts.jobs));
    for (const p of problems) io.stderr.write(`${describeProblem(p)}\n`);
    const summary = await runRenewal({
      outboxRoot,
      jobs,
      tenant: opts.tenant,
      withinMs,
      dryRun: true,
      logger,
    });
    for (const item of summary.items) {
      if (item.action === 'renew' || item.action === 'finish')
        io.stdout.write(`would renew: ${planLine(item)}\n`);
      else if (item.action === 'invalid' || item.action === 'missing')
        io.stdout.write(`not touched: ${planLine(item)}\n`);
    }
    const wanted = summary.items.filter((i) => i.action === 'renew' || i.action === 'finish').length;
    io.stdout.write(`renew (dry run): ${summary.checked} files checked, ${wanted} would be renewed\n`);
    return;
  }
  const ctx = await openContext(opts, logger);
  try {
    for (const p of ctx.problems) io.stderr.write(`${describeProblem(p)}\n`);
    const summary = await runRenewal({
      outboxRoot,
      jobs: ctx.jobs,
      tenant: opts.tenant,
      withinMs,
      connection: ctx.connection,
      prefix: ctx.prefix,
      logger: ctx.logger,
      defaultProviderUrl: opts.providerUrl ?? process.env.SEALER_PROVIDER_URL,
      onProgress: (item, settled, total) => io.stderr.write(`[${settled}/${total}] ${outcomeLine(item)}\n`),
    });
    for (const item of summary.items) {
      if (item.action === 'invalid' || item.action === 'missing')
        io.stdout.write(`not touched: ${planLine(item)}\n`);
    }
    io.stdout.write(`${summaryLine(summary)}\n`);
    if (summary.failed > 0) process.exitCode = 1;
  } finally {
    await ctx.release();
  }
}

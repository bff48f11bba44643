// `sealer pause [--tenant T] [--json]` and `sealer resume [--tenant T] [--json]`: stop or restart taking
// invoices from one tenant's queue (the others keep sealing), or every tenant's. Jobs in hand finish.
// Exit 0 when something changed or was already so, 1 for a tenant nobody knows.
import { pauseSealing, pausedTenants, resumeSealing, UnknownTenantError } from '../../queue';
import { openContext, processIo, type CliIo, type CommonOptions } from '../context';

export interface PauseOptions extends CommonOptions {
  tenant?: string;
  json?: boolean;
}

export async function pauseCommand(
  action: 'pause' | 'resume',
  opts: PauseOptions,
  io: CliIo = processIo,
): Promise<void> {
  const ctx = await openContext(opts);
  try {
    const target = {
      redis: ctx.redis,
      connection: ctx.connection,
      prefix: ctx.prefix,
      tenants: ctx.jobs.map((j) => j.tenant),
    };
    let changed: string[];
    try {
      changed = await (action === 'pause' ? pauseSealing : resumeSealing)(target, opts.tenant);
    } catch (err) {
      if (!(err instanceof UnknownTenantError)) throw err;
      io.stderr.write(`sealer: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    const paused = await pausedTenants(target);
    ctx.logger.info({ action, tenant: opts.tenant ?? 'all', changed, paused }, `sealing ${action}d`);
    if (opts.json) {
      io.stdout.write(JSON.stringify({ action, changed, paused }, null, 2) + '\n');
      return;
    }
    const scope = opts.tenant === undefined ? 'every tenant' : `tenant ${opts.tenant}`;
    io.stdout.write(
      `${action}: ${scope}: ${changed.length ? `${changed.join(', ')} ${action}d` : `nothing to ${action}`}; ` +
        `paused now: ${paused.length ? paused.join(', ') : 'none'}\n`,
    );
  } finally {
    await ctx.release();
  }
}

// `sealer dashboard [--port P] [--host H] [--user U] --password-ref env:NAME|file:PATH`: the ops web
// (Bull Board, runs and failures with audited buttons, the archive page) behind one login, until
// SIGINT/SIGTERM. The password is a secret reference, never a value on the command line; without one
// the command refuses to start (exit 2).
import { resolveSecret } from '../../jobs/secret-ref';
import { archiveSpecs, TenantArchives } from '../../archive';
import { ParkedApprovals } from '../../custody';
import { checkHealth, providerTargets } from '../../ops/health';
import { metricsRoutes } from '../../ops/metrics-server';
import { SealerMetrics } from '../../ops/sealer-metrics';
import { startOpsWeb } from '../../ops/web-server';
import {
  describeProblem,
  loggerFor,
  openContext,
  processIo,
  type CliIo,
  type CommonOptions,
} from '../context';
import { USAGE_EXIT } from '../usage';

export interface DashboardOptions extends CommonOptions {
  /** default 8080 */
  port: number;
  /** default 127.0.0.1 */
  host: string;
  /** default SEALER_DASHBOARD_USER, else admin */
  user?: string;
  /** default SEALER_DASHBOARD_PASSWORD_REF */
  passwordRef?: string;
}

export async function dashboardCommand(opts: DashboardOptions, io: CliIo = processIo): Promise<void> {
  const env = process.env;
  const user = opts.user ?? env.SEALER_DASHBOARD_USER ?? 'admin';
  const ref = opts.passwordRef ?? env.SEALER_DASHBOARD_PASSWORD_REF;
  if (!ref) {
    io.stderr.write(
      'sealer dashboard: refusing to start without a password: give --password-ref env:NAME or file:PATH ' +
        '(or set SEALER_DASHBOARD_PASSWORD_REF)\n',
    );
    process.exitCode = USAGE_EXIT;
    return;
  }
  let password: string;
  try {
    password = await resolveSecret(ref, process.cwd());
  } catch (err) {
    io.stderr.write(`sealer dashboard: refusing to start without a password: ${(err as Error).message}\n`);
    process.exitCode = USAGE_EXIT;
    return;
  }
  if (password === '') {
    io.stderr.write(`sealer dashboard: refusing to start without a password: ${ref} is empty\n`);
    process.exitCode = USAGE_EXIT;
    return;
  }

  const ctx = await openContext({ ...opts, waitForRedisMs: 30_000 }, loggerFor(io));
  let stop = (): void => undefined;
  const stopped = new Promise<void>((resolve) => (stop = () => resolve()));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (io.signal?.aborted) stop();
  io.signal?.addEventListener('abort', stop, { once: true });
  try {
    for (const p of ctx.problems) io.stderr.write(`${describeProblem(p)}\n`);
    // Queue depth and approvals left, read at each scrape (the workers' own /metrics count the seals).
    const metrics = new SealerMetrics({
      tenants: [...new Set(ctx.jobs.map((j) => j.tenant))],
      queues: { connection: ctx.connection, prefix: ctx.prefix },
      approvals: new ParkedApprovals(ctx.redis, ctx.prefix),
      onError: (err) => ctx.logger.warn({ err: err.message }, 'metrics: a gauge could not be read'),
    });
    const routes = metricsRoutes(metrics, () =>
      checkHealth({
        redisUrl: ctx.endpoint.url,
        providers: providerTargets(ctx.jobs, process.env.SEALER_PROVIDER_URL),
      }),
    );
    // The archive page searches each tenant's index (beside its outbox, or SEALER_ARCHIVE).
    const archive = new TenantArchives(archiveSpecs(ctx.jobs));
    const web = await startOpsWeb({
      archive,
      extraRoutes: (app) => {
        app.get('/metrics', routes.metrics);
        app.get('/healthz', routes.healthz);
      },
      host: opts.host,
      port: opts.port,
      login: { user, password },
      redis: ctx.redis,
      connection: ctx.connection,
      prefix: ctx.prefix,
      jobs: ctx.jobs,
      logger: ctx.logger,
    });
    try {
      io.stdout.write(
        `dashboard: ${web.url}/ (user ${user}); archive page: ${web.url}/archive; ` +
          `${web.url}/metrics and ${web.url}/healthz need no login\n`,
      );
      await stopped;
    } finally {
      await web.close();
      await metrics.close();
      await archive.close();
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    io.signal?.removeEventListener('abort', stop);
    await ctx.release();
  }
  io.stderr.write('dashboard stopped\n');
}

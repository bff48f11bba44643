// The ops web server behind `sealer dashboard`: the login, Bull Board at /queues (read-only: changes go
// through the runs page's audited buttons), the runs and failures page at /, and the finance archive
// page at /archive. Every page and API needs a session except /login and what `extraRoutes` mounts
// (/metrics, /healthz), which come first so that a probe needs no login.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
// package.json pins @bull-board/api to the version @bull-board/express is built with: one copy, one class.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { ArchiveIndex } from '../archive/archive-index';
import type { JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';
import { mountArchivePage } from './archive-page';
import { mountLogin, requireSession } from './login';
import { OpsActions } from './ops-actions';
import { mountRunsPage } from './runs-page';
import { OpsQueues } from './board-queues';
import { SessionKeeper } from './session';

export interface OpsWebOptions {
  /** default 127.0.0.1: the dashboard is for an ops network, not the internet */
  host?: string;
  /** 0 = any free port (default 0) */
  port?: number;
  /** the one dashboard login; an empty password is refused at start */
  login: { user: string; password: string };
  redis: Redis;
  connection: ConnectionOptions;
  prefix: string;
  jobs: JobDefinition[];
  archive?: ArchiveIndex;
  logger: Logger;
  /** mounted before the login guard: public routes such as /metrics and /healthz */
  extraRoutes?: (app: Express) => void;
  /** how long a login lasts (default 8 hours) */
  sessionTtlMs?: number;
  /** delay before answering a failed login (default 400 ms) */
  loginFailureDelayMs?: number;
}

export interface OpsWeb {
  url: string;
  close(): Promise<void>;
}

export async function startOpsWeb(opts: OpsWebOptions): Promise<OpsWeb> {
  if (!opts.login.user || !opts.login.password) {
    throw new Error('the dashboard needs a login user and a non-empty password');
  }
  const { logger } = opts;
  const sessions = new SessionKeeper({ ttlMs: opts.sessionTtlMs });
  const queues = new OpsQueues(opts.connection, opts.prefix);
  const actions = new OpsActions({
    redis: opts.redis,
    connection: opts.connection,
    prefix: opts.prefix,
    jobs: opts.jobs,
    logger,
    queues,
  });

  const app = express();
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    // No page of ours is framed or sniffed; none runs a script but Bull Board's own.
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  opts.extraRoutes?.(app);
  app.use(express.urlencoded({ extended: false, limit: '16kb' }));
  mountLogin(app, {
    user: opts.login.user,
    password: opts.login.password,
    sessions,
    logger,
    failureDelayMs: opts.loginFailureDelayMs,
  });

  const board = new ExpressAdapter();
  board.setBasePath('/queues');
  createBullBoard({
    queues: (await queues.boardQueues(actions.tenants)).map(
      (q) => new BullMQAdapter(q, { readOnlyMode: true }),
    ),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'sealer queues' } },
  });
  const guard = requireSession(sessions);
  app.use('/queues', guard, (req: Request, res: Response, next: NextFunction) => {
    // Read-only: a retry, pause or removal made on the board would bypass the audit trail.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.status(403).json({ error: "the queue board is read-only; use the runs page's buttons (audited)" });
      return;
    }
    next();
  });
  app.use('/queues', board.getRouter() as express.Router);

  mountRunsPage(app, { redis: opts.redis, prefix: opts.prefix, actions, sessions });
  mountArchivePage(app, { archive: opts.archive, jobs: opts.jobs, sessions, logger });

  // Anything else needs a session too, so an unknown path tells nothing to a stranger.
  app.use(guard, (_req: Request, res: Response) => {
    res.status(404).type('text').send('not found');
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    void _next;
    logger.error({ err: (err as Error).message, path: req.path }, 'dashboard request failed');
    if (!res.headersSent) res.status(500).type('text').send('internal error (see the dashboard log)');
  });

  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, tenants: actions.tenants }, 'dashboard listening');
  return {
    url,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await queues.close();
    },
  };
}

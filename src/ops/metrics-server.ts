// GET /metrics and GET /healthz on node:http, for `sealer work --metrics-port P`; the same two handlers
// for the dashboard to mount. No express here: the worker stays light, and express's req/res extend
// node's, so plain (req, res) handlers serve both.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HealthReport } from './health';

/** What the server needs of SealerMetrics. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** Runs the health checks (e.g. `() => checkHealth(options)`). */
export type HealthSource = () => Promise<HealthReport>;

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface MetricsRoutes {
  /** GET /metrics: the exposition text, 500 only if the registry itself fails */
  metrics: RouteHandler;
  /** GET /healthz: 200 with the report when every check is ok, else 503 naming the failed checks */
  healthz: RouteHandler;
}

export function metricsRoutes(metrics: MetricsSource, health: HealthSource): MetricsRoutes {
  return {
    metrics: (_req, res) => {
      metrics.metrics().then(
        (text) => send(res, 200, metrics.contentType, text),
        (err: unknown) =>
          send(res, 500, 'text/plain; charset=utf-8', `metrics failed: ${(err as Error).message}\n`),
      );
    },
    healthz: (_req, res) => {
      health().then(
        (report) =>
          sendJson(res, report.ok ? 200 : 503, {
            ...report,
            ...(report.ok
              ? {}
              : { failed: [...new Set(report.checks.filter((c) => !c.ok).map((c) => c.name))] }),
          }),
        (err: unknown) =>
          sendJson(res, 503, { ok: false, failed: ['health'], error: (err as Error).message, checks: [] }),
      );
    },
  };
}

export interface MetricsServerOptions {
  /** address to listen on, e.g. 127.0.0.1 (or 0.0.0.0 in a container) */
  host: string;
  /** port; 0 picks a free one (read it from `url`) */
  port: number;
  metrics: MetricsSource;
  health: HealthSource;
}

export interface MetricsServer {
  /** e.g. http://127.0.0.1:9464 */
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(o: MetricsServerOptions): Promise<MetricsServer> {
  const routes = metricsRoutes(o.metrics, o.health);
  const paths: Record<string, RouteHandler> = { '/metrics': routes.metrics, '/healthz': routes.healthz };
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = paths[pathname];
    if (!route) return send(res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics or /healthz\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    route(req, res);
  });
  // A scraper that keeps its connection open must not hold up close().
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  res.setHeader('content-type', contentType);
  res.setHeader('cache-control', 'no-store');
  // node:http itself leaves the body out of an answer to HEAD
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
}

// Redis going away and coming back, told once each: ioredis and BullMQ report every failed reconnect
// (many a second, with stack traces), which buries what ops needs to read in a log. Connection errors
// are folded into one "lost" line and one "back" line per outage; other errors pass through.
import type { Redis } from 'ioredis';
import type { Logger } from './logger';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** An error that says the connection to Redis is down (not a Redis reply). */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; name?: string; message?: string } | null;
  if (!e) return false;
  if (e.code !== undefined && CONNECTION_CODES.has(e.code)) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  return /Connection is closed|connect ECONNREFUSED|Stream isn't writeable|getaddrinfo/i.test(
    e.message ?? '',
  );
}

export class RedisHealth {
  private downSince?: number;

  constructor(private readonly logger: Logger) {}

  get down(): boolean {
    return this.downSince !== undefined;
  }

  /** Watches a connection: its errors and its coming back. */
  watch(redis: Redis): void {
    redis.on('error', (err: unknown) => this.error(err));
    redis.on('ready', () => this.ready());
  }

  /** An error from any Redis user (ioredis client, BullMQ worker or queue). */
  error(err: unknown, context = 'redis'): void {
    if (!isConnectionError(err)) {
      this.logger.error({ err: (err as Error)?.message, context }, 'redis error');
      return;
    }
    if (this.downSince !== undefined) return;
    this.downSince = Date.now();
    const code = (err as { code?: string }).code;
    this.logger.error({ code }, 'Redis is unreachable; work pauses until it is back');
  }

  ready(): void {
    if (this.downSince === undefined) return;
    const downMs = Date.now() - this.downSince;
    this.downSince = undefined;
    this.logger.warn({ downMs }, 'Redis is back; work goes on');
  }
}

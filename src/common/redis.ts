// Finds a Redis for the sealer: REDIS_URL if set, else 127.0.0.1:6379 if it answers, else a private
// `redis-server` child on a free loopback port that is stopped when the caller releases it.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import IORedis, { type Redis, type RedisOptions } from 'ioredis';
import { SealerError } from './errors';

export class RedisUnavailableError extends SealerError {}

export interface RedisEndpoint {
  url: string;
  /** how it was found: from REDIS_URL, the default local port, or a private child process */
  origin: 'env' | 'local' | 'private';
  release(): Promise<void>;
}

const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** BullMQ needs maxRetriesPerRequest: null on connections it blocks on. */
export function connectRedis(url: string, extra: RedisOptions = {}): Redis {
  return new IORedis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, ...extra });
}

/** Whether a Redis at `url` answers PING now (one short try, no retries). */
export async function redisAnswers(url: string): Promise<boolean> {
  const probe = new IORedis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function onPath(command: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '').split(path.delimiter).some((dir) => dir && fs.existsSync(path.join(dir, command)));
}

async function startPrivateRedis(env: NodeJS.ProcessEnv): Promise<RedisEndpoint> {
  if (!onPath('redis-server', env)) {
    throw new RedisUnavailableError(
      'No Redis answers on 127.0.0.1:6379 (or REDIS_URL) and redis-server is not on the PATH. Install it ' +
        '(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL.',
    );
  }
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealer-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers(url))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new RedisUnavailableError(`redis-server did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    origin: 'private',
    release: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ResolveRedisOptions {
  env?: NodeJS.ProcessEnv;
  /** start a private redis-server when none answers: for the demo and the benchmark only, since
   * whatever is queued there is gone when it stops */
  allowPrivate?: boolean;
  /** keep trying this long for a Redis to answer (a service starting beside us); default 0 */
  waitMs?: number;
  /** the address tried without REDIS_URL; a parameter so tests can make it unreachable */
  defaultUrl?: string;
}

export async function resolveRedis(o: ResolveRedisOptions = {}): Promise<RedisEndpoint> {
  const env = o.env ?? process.env;
  const url = env.REDIS_URL || (o.defaultUrl ?? DEFAULT_URL);
  const deadline = Date.now() + (o.waitMs ?? 0);
  for (;;) {
    if (await redisAnswers(url)) {
      return { url, origin: env.REDIS_URL ? 'env' : 'local', release: async () => undefined };
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (env.REDIS_URL) throw new RedisUnavailableError('REDIS_URL is set but no Redis answers there');
  if (o.allowPrivate) return startPrivateRedis(env);
  throw new RedisUnavailableError(
    'No Redis answers on 127.0.0.1:6379: start one (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL',
  );
}

/** Deletes every key under `prefix:` (SCAN, never KEYS); returns how many. */
export async function deleteKeysByPrefix(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

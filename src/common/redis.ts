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

async function answers(url: string): Promise<boolean> {
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
  while (!(await answers(url))) {
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

/** `defaultUrl` is a parameter only so tests can make the default port unreachable. */
export async function resolveRedis(
  env: NodeJS.ProcessEnv = process.env,
  defaultUrl = DEFAULT_URL,
): Promise<RedisEndpoint> {
  const noop = async () => undefined;
  if (env.REDIS_URL) {
    if (!(await answers(env.REDIS_URL))) {
      throw new RedisUnavailableError(`REDIS_URL is set but no Redis answers there`);
    }
    return { url: env.REDIS_URL, origin: 'env', release: noop };
  }
  if (await answers(defaultUrl)) return { url: defaultUrl, origin: 'local', release: noop };
  return startPrivateRedis(env);
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

// Real Redis for tests (REDIS_URL or 127.0.0.1:6379), each test file under its own key prefix, which is
// deleted when the file finishes.
import crypto from 'node:crypto';
import { after } from 'node:test';
import type { ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis, deleteKeysByPrefix } from '../../src/common/redis';

export interface TestRedis {
  url: string;
  redis: Redis;
  prefix: string;
  connection: ConnectionOptions;
}

export async function testRedis(): Promise<TestRedis> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = connectRedis(url);
  await redis.ping();
  const prefix = `sealer-test-${crypto.randomBytes(6).toString('hex')}`;
  after(async () => {
    await deleteKeysByPrefix(redis, prefix);
    redis.disconnect();
  });
  return { url, redis, prefix, connection: { url, maxRetriesPerRequest: null } };
}

/** Every key and value under the prefix, as text: for asserting that no secret was ever written. */
export async function dumpPrefix(redis: Redis, prefix: string): Promise<string> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      out.push(key);
      if (type === 'string') out.push((await redis.get(key)) ?? '');
      else if (type === 'hash') out.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'list') out.push(...(await redis.lrange(key, 0, -1)));
      else if (type === 'set') out.push(...(await redis.smembers(key)));
      else if (type === 'zset') out.push(...(await redis.zrange(key, '0', '-1')));
      else if (type === 'stream') out.push(JSON.stringify(await redis.xrange(key, '-', '+')));
    }
  } while (cursor !== '0');
  return out.join('\n');
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectRedis, resolveRedis, RedisUnavailableError } from '../../src/common/redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'with no Redis at REDIS_URL the error says so and names no password',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await assert.rejects(
      resolveRedis({ env: { REDIS_URL: 'redis://:topsecret@127.0.0.1:1' }, allowPrivate: true }),
      (err: Error) => {
        assert.ok(err instanceof RedisUnavailableError);
        assert.ok(!err.message.includes('topsecret'));
        return true;
      },
    );
  },
);

test(
  'with no Redis on the default port a private redis-server is started and stopped',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const endpoint = await resolveRedis({
      env: { PATH: process.env.PATH },
      defaultUrl: 'redis://127.0.0.1:1',
      allowPrivate: true,
    });
    assert.equal(endpoint.origin, 'private');
    const redis = connectRedis(endpoint.url);
    assert.equal(await redis.ping(), 'PONG');
    redis.disconnect();
    await endpoint.release();
    const after = connectRedis(endpoint.url, {
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    after.on('error', () => undefined);
    await assert.rejects(after.connect());
    after.disconnect();
  },
);

test(
  'with no redis-server on the PATH the error says how to get one',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await assert.rejects(
      resolveRedis({ env: { PATH: '/nonexistent' }, defaultUrl: 'redis://127.0.0.1:1', allowPrivate: true }),
      /redis-server is not on the PATH.*apt-get install redis-server/,
    );
  },
);

test(
  'commands that queue for later never fall back to a private Redis',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await assert.rejects(
      resolveRedis({ env: { PATH: process.env.PATH }, defaultUrl: 'redis://127.0.0.1:1' }),
      /No Redis answers .* set REDIS_URL/,
    );
  },
);

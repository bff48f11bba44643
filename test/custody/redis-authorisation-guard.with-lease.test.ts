// The authorisation lease in Redis: worker processes (here guards on Redis connections of their own)
// never hold one credential's lease at once, while other credentials go on in parallel; the lease is
// released only by its holder, renewed while held, runs out when its holder died, and a wait for it is
// bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CustodyError, RedisAuthorisationGuard } from '../../src/custody';
import { leaseKey, type CredentialRef } from '../../src/custody/credential-keys';
import { testRedis } from '../helpers/test-redis';
import { capture, ownConnection, until } from './custody-fixture';

const T = { timeout: 120_000 };
const ref = (credentialId: string): CredentialRef => ({
  providerUrl: 'https://provider.example/csc/v2',
  tenant: 'fuji',
  credentialId,
});

test('six processes on one credential: never two holders at once, and every turn is taken', T, async () => {
  const { url, redis, prefix } = await testRedis();
  const guards = Array.from(
    { length: 6 },
    () =>
      new RedisAuthorisationGuard({ redis: ownConnection(url), prefix, credential: ref('c1'), pollMs: 10 }),
  );
  let inside = 0;
  let most = 0;
  let turns = 0;
  await Promise.all(
    guards.map(async (guard) => {
      for (let i = 0; i < 5; i++) {
        await guard.withLease(async () => {
          inside++;
          most = Math.max(most, inside);
          // Give the others every chance to get in: round trips to Redis while holding the lease.
          for (let k = 0; k < 3; k++) await guard.latched();
          inside--;
          turns++;
        });
      }
    }),
  );
  assert.equal(most, 1, 'one holder at a time');
  assert.equal(turns, 30);
  assert.equal(await redis.exists(leaseKey(prefix, ref('c1'))), 0, 'released after the last turn');
});

test('leases of two credentials are held at the same time', T, async () => {
  const { url, prefix } = await testRedis();
  const a = new RedisAuthorisationGuard({ redis: ownConnection(url), prefix, credential: ref('c1') });
  const b = new RedisAuthorisationGuard({ redis: ownConnection(url), prefix, credential: ref('c2') });
  let bInside = false;
  // A holds its lease until B is inside its own: this would never end if the lease were global.
  await Promise.all([
    a.withLease(() => until(() => bInside, 'the other credential to be authorising')),
    b.withLease(async () => {
      bInside = true;
    }),
  ]);
});

test('a lease is released only by its holder', T, async () => {
  const { redis, prefix } = await testRedis();
  const key = leaseKey(prefix, ref('c3'));
  const guard = new RedisAuthorisationGuard({ redis, prefix, credential: ref('c3') });
  await guard.withLease(async () => {
    assert.match((await redis.get(key)) ?? '', /^[0-9a-f]{32}$/, 'held under a random token');
    // As if this holder stalled past its lease and another process took it.
    await redis.set(key, 'another-holder', 'PX', 10_000);
  });
  assert.equal(await redis.get(key), 'another-holder', "the stalled holder did not delete the other's lease");
});

test("a crashed holder's lease runs out and the next process takes it", T, async () => {
  const { redis, prefix } = await testRedis();
  const key = leaseKey(prefix, ref('c4'));
  await redis.set(key, 'crashed-holder', 'PX', 300);
  const log = capture();
  const guard = new RedisAuthorisationGuard({ redis, prefix, credential: ref('c4'), logger: log.logger });
  const held = await guard.withLease(async () => redis.get(key));
  assert.match(held ?? '', /^[0-9a-f]{32}$/, 'work ran under its own lease, not beside the dead one');
  const taken = log.lines().find((l) => l.msg === 'authorisation lease taken');
  assert.ok(taken, 'it had to wait for the dead lease');
  assert.equal(taken.credentialId, 'c4');
});

test('a lease held longer than its lifetime is renewed, so nobody else takes it', T, async () => {
  const { url, redis, prefix } = await testRedis();
  const key = leaseKey(prefix, ref('c5'));
  const guard = new RedisAuthorisationGuard({ redis, prefix, credential: ref('c5'), leaseMs: 300 });
  const rival = new RedisAuthorisationGuard({
    redis: ownConnection(url),
    prefix,
    credential: ref('c5'),
    leaseMs: 300,
    pollMs: 10,
  });
  let rivalIn = false;
  let rivalRunning: Promise<void> | undefined;
  await guard.withLease(async () => {
    const token = await redis.get(key);
    rivalRunning = rival.withLease(async () => {
      rivalIn = true;
    });
    // Watch the TTL: each rise is a renewal. Three of them span more than the 300 ms lifetime.
    let renewals = 0;
    let last = await redis.pttl(key);
    await until(async () => {
      const ttl = await redis.pttl(key);
      if (ttl > last) renewals++;
      last = ttl;
      return renewals >= 3;
    }, 'three renewals');
    assert.equal(await redis.get(key), token, 'still ours');
    assert.equal(rivalIn, false, 'the rival waited all along');
  });
  await rivalRunning;
  assert.equal(rivalIn, true, 'and got it once released');
});

test(
  'a wait for a lease that is never released is bounded, with an error naming the credential',
  T,
  async () => {
    const { redis, prefix } = await testRedis();
    await redis.set(leaseKey(prefix, ref('c6')), 'stuck', 'PX', 60_000);
    const guard = new RedisAuthorisationGuard({ redis, prefix, credential: ref('c6'), maxWaitMs: 200 });
    let ran = false;
    await assert.rejects(
      guard.withLease(async () => {
        ran = true;
      }),
      (err: unknown) => {
        assert.ok(err instanceof CustodyError);
        assert.match(
          err.message,
          /credential c6 of tenant fuji: another worker process held the authorisation lease/,
        );
        return true;
      },
    );
    assert.equal(ran, false);
  },
);

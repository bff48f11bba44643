// The credential latch in Redis: set by one process, seen by every other one of that credential and by
// no other credential; cleared by tenant and credential (what `factors set` knows) at every provider,
// or at one; holding the provider's answer only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clearCredentialLatch, listCredentialLatches, RedisAuthorisationGuard } from '../../src/custody';
import type { CredentialRef } from '../../src/custody';
import { testRedis } from '../helpers/test-redis';
import { ownConnection } from './custody-fixture';

const T = { timeout: 120_000 };
const A = 'https://a.example/csc/v2';
const B = 'https://b.example/csc/v2';
const latch = {
  reason: 'HTTP 400 invalid_pin: The PIN is invalid',
  status: 400,
  error: 'invalid_pin',
  at: 1,
};

test(
  'a latch set by one process stops that credential for the others, and no other credential',
  T,
  async () => {
    const { url, prefix } = await testRedis();
    const guard = (credential: CredentialRef) =>
      new RedisAuthorisationGuard({ redis: ownConnection(url), prefix, credential });
    const fuji = { providerUrl: A, tenant: 'fuji', credentialId: 'c1' };
    await guard(fuji).latch(latch);
    assert.deepEqual(await guard(fuji).latched(), latch);
    assert.equal(await guard({ ...fuji, credentialId: 'c2' }).latched(), undefined);
    assert.equal(await guard({ ...fuji, tenant: 'sakura' }).latched(), undefined);
    assert.equal(await guard({ ...fuji, providerUrl: B }).latched(), undefined);
    await guard(fuji).clearLatch();
    assert.equal(await guard(fuji).latched(), undefined);
  },
);

test(
  'clearing by tenant and credential lifts it at every provider, and leaves other tenants latched',
  T,
  async () => {
    const { redis, prefix } = await testRedis();
    const at = (providerUrl: string, tenant: string) =>
      new RedisAuthorisationGuard({ redis, prefix, credential: { providerUrl, tenant, credentialId: 'c1' } });
    await at(A, 'fuji').latch(latch);
    await at(B, 'fuji').latch(latch);
    await at(A, 'sakura').latch(latch);
    const cleared = await clearCredentialLatch(redis, prefix, { tenant: 'fuji', credentialId: 'c1' });
    assert.deepEqual(cleared.map((l) => l.providerUrl).sort(), [A, B]);
    assert.equal(cleared[0]!.reason, latch.reason);
    const left = await listCredentialLatches(redis, prefix);
    assert.deepEqual(
      left.map((l) => [l.providerUrl, l.tenant, l.credentialId]),
      [[A, 'sakura', 'c1']],
    );
    // With a provider URL, only that one.
    await at(B, 'sakura').latch(latch);
    await clearCredentialLatch(redis, prefix, { tenant: 'sakura', credentialId: 'c1', providerUrl: B });
    assert.deepEqual(
      (await listCredentialLatches(redis, prefix)).map((l) => l.providerUrl),
      [A],
    );
    assert.deepEqual(await clearCredentialLatch(redis, prefix, { tenant: 'nobody', credentialId: 'c1' }), []);
  },
);

test('an unreadable latch still stops the credential', T, async () => {
  const { redis, prefix } = await testRedis();
  const credential = { providerUrl: A, tenant: 'fuji', credentialId: 'c9' };
  await redis.hset(`${prefix}:custody:latches`, JSON.stringify([A, 'fuji', 'c9']), '{not json');
  const got = await new RedisAuthorisationGuard({ redis, prefix, credential }).latched();
  assert.match(got?.reason ?? '', /cannot read/);
});

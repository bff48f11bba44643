// TOTP steps claimed in Redis: of processes claiming one step at once exactly one gets it, a step at or
// below the last one used is refused with that last step (so the caller knows which step to wait for),
// and the claim is forgotten only long after its step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisAuthorisationGuard } from '../../src/custody';
import { totpStepKey, type CredentialRef } from '../../src/custody/credential-keys';
import { testRedis } from '../helpers/test-redis';
import { ownConnection } from './custody-fixture';

const T = { timeout: 120_000 };
const ref: CredentialRef = {
  providerUrl: 'https://provider.example/csc/v2',
  tenant: 'fuji',
  credentialId: 'c1',
};
const STEP = 59_000_000; // about 2026 in 30-second steps

test(
  'six processes claiming one step at once: exactly one gets it, the others learn it is used',
  T,
  async () => {
    const { url, prefix } = await testRedis();
    const guards = Array.from(
      { length: 6 },
      () => new RedisAuthorisationGuard({ redis: ownConnection(url), prefix, credential: ref }),
    );
    const claims = await Promise.all(guards.map((g) => g.claimStep(STEP, 30)));
    assert.equal(claims.filter((c) => c.claimed).length, 1);
    for (const c of claims.filter((x) => !x.claimed)) assert.deepEqual(c, { claimed: false, lastUsed: STEP });
  },
);

test('only a later step wins; the last used step is kept for minutes, not forever', T, async () => {
  const { redis, prefix } = await testRedis();
  const guard = new RedisAuthorisationGuard({ redis, prefix, credential: ref });
  assert.deepEqual(await guard.claimStep(STEP + 5, 30), { claimed: true });
  assert.deepEqual(await guard.claimStep(STEP + 3, 30), { claimed: false, lastUsed: STEP + 5 });
  assert.deepEqual(await guard.claimStep(STEP + 5, 30), { claimed: false, lastUsed: STEP + 5 });
  assert.deepEqual(await guard.claimStep(STEP + 6, 30), { claimed: true });
  const other = new RedisAuthorisationGuard({ redis, prefix, credential: { ...ref, tenant: 'sakura' } });
  assert.deepEqual(
    await other.claimStep(STEP + 5, 30),
    { claimed: true },
    'another tenant is another credential',
  );
  const ttl = await redis.pttl(totpStepKey(prefix, ref));
  assert.ok(ttl > 90_000 && ttl <= 300_000, `kept for ${ttl} ms: three periods at least, five minutes here`);
});

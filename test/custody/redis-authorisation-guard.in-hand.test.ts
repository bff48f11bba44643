// Signatures in hand are shared between the processes of one credential, so a demand that every process
// reads (the invoices queued) is not authorised once per process: each tells its own count and hears the
// others' (and how many of them hold any), and a process that stopped telling (crashed) stops counting
// once its entry runs out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisAuthorisationGuard } from '../../src/custody';
import { inHandKey } from '../../src/custody/credential-keys';
import { testRedis } from '../helpers/test-redis';

const T = { timeout: 60_000 };
const ref = { providerUrl: 'https://provider.example/csc/v2', tenant: 'fuji', credentialId: 'fuji-eseal' };

test('each process hears what the others hold, never its own, and only for its credential', T, async () => {
  const { redis, prefix } = await testRedis();
  const a = new RedisAuthorisationGuard({ redis, prefix, credential: ref });
  const b = new RedisAuthorisationGuard({ redis, prefix, credential: ref });
  const elsewhere = new RedisAuthorisationGuard({ redis, prefix, credential: { ...ref, tenant: 'sakura' } });
  const c = new RedisAuthorisationGuard({ redis, prefix, credential: ref });
  assert.deepEqual(await a.shareInHand(500), { signatures: 0, processes: 0 });
  assert.deepEqual(await b.shareInHand(120), { signatures: 500, processes: 1 });
  assert.deepEqual(await a.shareInHand(300), { signatures: 120, processes: 1 }, 'told again: replaced');
  assert.deepEqual(await c.shareInHand(0), { signatures: 420, processes: 2 });
  assert.deepEqual(
    await b.shareInHand(0),
    { signatures: 300, processes: 1 },
    'one holding nothing is not counted',
  );
  assert.deepEqual(
    await elsewhere.shareInHand(7),
    { signatures: 0, processes: 0 },
    'another tenant is another credential',
  );
  assert.deepEqual(await a.shareInHand(1), { signatures: 0, processes: 0 });
});

test('an entry not told again within its lifetime no longer counts, and is dropped', T, async () => {
  const { redis, prefix } = await testRedis();
  const key = inHandKey(prefix, ref);
  // A crashed process's entry, its lifetime over; and one with a value this version did not write.
  await redis.hset(key, 'crashed', `400:${Date.now() - 1}`, 'foreign', 'not-a-count');
  const a = new RedisAuthorisationGuard({ redis, prefix, credential: ref });
  assert.deepEqual(await a.shareInHand(10), { signatures: 0, processes: 0 });
  assert.deepEqual(Object.keys(await redis.hgetall(key)).length, 1, 'only the live entry is left');
  assert.ok((await redis.pttl(key)) > 0, 'the hash itself expires');
});

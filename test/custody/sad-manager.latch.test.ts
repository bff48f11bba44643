// A wrong factor stops the credential for every worker process at once: the process that met the
// provider's refusal latches it in Redis (with the provider's answer, no secret), another process on
// another connection fails with that reason without calling the provider, other credentials go on, and
// clearing the latch (what `sealer factors set`, `sealer approve` and ops' retry do) lets the next
// authorisation through.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { generateSecret } from 'otplib';
import { CscError, SadManager, type KeyFactors } from '../../src/csc';
import {
  clearCredentialLatch,
  RedisAuthorisationGuard,
  readLatch,
  type CredentialRef,
} from '../../src/custody';
import { makeDataDir, startFixture, type Fixture } from '../csc/sandbox-fixture';
import { dumpPrefix, testRedis } from '../helpers/test-redis';
import { ownConnection, StepClock } from './custody-fixture';

const T = { timeout: 180_000 };
const FUJI = 'fuji-eseal-ec';
const FUJI_SCAL2 = 'fuji-eseal-ec-scal2';
const SAKURA = 'sakura-eseal-rsa';
let dataDir: string;
let fx: Fixture;
const clock = new StepClock();
before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir, { totpNow: clock.now });
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const randomHash = () => crypto.randomBytes(32);

/** A worker process's SAD manager: its own client and Redis connection, the shared prefix. */
async function processOn(
  url: string,
  prefix: string,
  credentialId: string,
  factors: () => Promise<KeyFactors> = fx.factorsFor(credentialId),
): Promise<{ manager: SadManager; ref: CredentialRef }> {
  const client = await fx.clientFor(credentialId);
  const credential = await client.credentialInfo(credentialId);
  const ref = { providerUrl: fx.sandbox.url, tenant: fx.credential(credentialId).tenant, credentialId };
  const guard = new RedisAuthorisationGuard({ redis: ownConnection(url), prefix, credential: ref });
  return { manager: new SadManager({ client, credential, factors, guard, clock }), ref };
}

test(
  'a wrong PIN latches the credential for another process, which fails without calling the provider, until cleared',
  T,
  async () => {
    const { url, redis, prefix } = await testRedis();
    const good = await fx.factorsFor(FUJI)();
    const wrongPin = good.pin === '000000' ? '111111' : '000000';
    const first = await processOn(url, prefix, FUJI, async () => ({ ...good, pin: wrongPin }));
    const second = await processOn(url, prefix, FUJI);
    const otherCredential = await processOn(url, prefix, FUJI_SCAL2);
    fx.sandbox.resetStats();

    const refused = await first.manager.reserve([randomHash()]).then(
      () => assert.fail('a wrong PIN must be refused'),
      (e: unknown) => e,
    );
    assert.ok(refused instanceof CscError);
    assert.equal(refused.code, 'invalid_pin');
    assert.equal(fx.sandbox.stats().authorize, 1, 'a PIN refusal is not retried');
    const latch = await readLatch(redis, prefix, first.ref);
    assert.equal(latch?.reason, 'HTTP 400 invalid_pin: The PIN is invalid');
    const stored = await dumpPrefix(redis, prefix);
    for (const secret of [wrongPin, good.pin!, good.totpSecret!])
      assert.ok(!stored.includes(secret), 'no secret in Redis');

    await assert.rejects(second.manager.reserve([randomHash()]), (e: unknown) => {
      assert.ok(e instanceof CscError);
      assert.equal(e.kind, 'refused', 'the invoice fails (it is not retried)');
      assert.equal(e.code, 'invalid_pin');
      assert.match(
        e.message,
        /credential fuji-eseal-ec: refused earlier with HTTP 400 invalid_pin: The PIN is invalid \(at .+\); not sending the factors again/,
      );
      return true;
    });
    assert.equal(fx.sandbox.stats().authorize, 1, 'the second process did not call the provider');

    await otherCredential.manager.reserve([randomHash()]);
    assert.equal(fx.sandbox.stats().authorize, 2, 'another credential goes on');

    // What `sealer factors set` does once the right PIN is stored.
    const cleared = await clearCredentialLatch(redis, prefix, { tenant: 'fuji', credentialId: FUJI });
    assert.equal(cleared.length, 1);
    const reservation = await second.manager.reserve([randomHash()]);
    assert.equal(reservation.scal, 1);
    assert.equal(fx.sandbox.stats().authorize, 3);
    assert.equal(fx.sandbox.stats().errors, 1, 'only the wrong PIN was ever refused');
    assert.equal(second.manager.authorisations, 1);
  },
);

test('a wrong TOTP secret: one retry on a fresh step, then the latch stops every process', T, async () => {
  const { url, redis, prefix } = await testRedis();
  const good = await fx.factorsFor(SAKURA)();
  const wrongSecret = generateSecret();
  const first = await processOn(url, prefix, SAKURA, async () => ({ ...good, totpSecret: wrongSecret }));
  const second = await processOn(url, prefix, SAKURA);
  fx.sandbox.resetStats();
  await assert.rejects(
    first.manager.reserve([randomHash()]),
    (e: unknown) => e instanceof CscError && e.code === 'invalid_otp',
  );
  assert.equal(fx.sandbox.stats().authorize, 2, 'the first try and one on a fresh step (clock skew)');
  assert.equal((await readLatch(redis, prefix, first.ref))?.error, 'invalid_otp');
  await assert.rejects(
    second.manager.reserve([randomHash()]),
    /refused earlier with HTTP 400 invalid_otp: The OTP is invalid/,
  );
  assert.equal(fx.sandbox.stats().authorize, 2);
  await clearCredentialLatch(redis, prefix, {
    tenant: 'sakura',
    credentialId: SAKURA,
    providerUrl: fx.sandbox.url,
  });
  await second.manager.reserve([randomHash()]);
  assert.equal(fx.sandbox.stats().authorize, 3);
});

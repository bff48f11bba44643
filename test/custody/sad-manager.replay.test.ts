// A replay refusal is someone else's step, not a wrong factor: when a client outside the lease (a
// person at `sealer approve --prompt`, another installation) used the current TOTP step first, the
// sandbox answers 400 invalid_otp "The OTP was already used ..."; the SAD manager retries on the next
// step, gets its SAD, and latches nothing. The step it used is recorded for the other processes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { SadManager, totpCode, totpTimeStep } from '../../src/csc';
import { RedisAuthorisationGuard, readLatch } from '../../src/custody';
import { totpStepKey } from '../../src/custody/credential-keys';
import { makeDataDir, startFixture, type Fixture } from '../csc/sandbox-fixture';
import { testRedis } from '../helpers/test-redis';
import { capture, StepClock } from './custody-fixture';

const T = { timeout: 180_000 };
const ID = 'fuji-eseal-ec';
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

test('a replayed step is retried on the next step, and the credential is not latched', T, async () => {
  const { redis, prefix } = await testRedis();
  const client = await fx.clientFor(ID);
  const credential = await client.credentialInfo(ID);
  const factors = await fx.factorsFor(ID)();
  const ref = { providerUrl: fx.sandbox.url, tenant: 'fuji', credentialId: ID };
  const log = capture();
  const manager = new SadManager({
    client,
    credential,
    factors: fx.factorsFor(ID),
    guard: new RedisAuthorisationGuard({ redis, prefix, credential: ref }),
    clock,
    logger: log.logger,
  });
  fx.sandbox.resetStats();
  // The outside client takes the current step.
  const step = totpTimeStep(clock.now(), 1);
  await client.authorize({
    credentialId: ID,
    numSignatures: 1,
    pin: factors.pin,
    otp: totpCode(factors.totpSecret!, { period: 1, now: clock.now() }),
  });

  const reservation = await manager.reserve([crypto.randomBytes(32)]);
  assert.equal(reservation.scal, 1);
  const stats = fx.sandbox.stats();
  assert.equal(stats.authorize, 3, 'outside client, our replayed step, our next step');
  assert.equal(stats.errors, 1, 'one refusal: the replay');
  assert.equal(manager.authorisations, 1);
  assert.equal(await readLatch(redis, prefix, ref), undefined, 'a replay latches nothing');
  const warned = log.lines().filter((l) => Number(l.level) >= 40);
  assert.deepEqual(
    warned.map((l) => [l.msg, l.error]),
    [['CSC refused the OTP as already used; retrying on the next time step', 'invalid_otp']],
  );
  assert.equal(await redis.get(totpStepKey(prefix, ref)), String(step + 1), 'the step used is recorded');
  // And the next authorisation (a batch larger than what is left) goes on normally, on a later step.
  await manager.reserve(Array.from({ length: credential.multisign }, () => crypto.randomBytes(32)));
  assert.equal(fx.sandbox.stats().errors, 1);
  assert.equal(await redis.get(totpStepKey(prefix, ref)), String(step + 2));
});

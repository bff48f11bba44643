// A new approval (`sealer approve`, here at a prompt) is a person's fresh word on the credential: it
// clears the latch a refusal set, so every worker process may go on with that credential.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import pino from 'pino';
import { totpCode } from '../../src/csc';
import { approveAtPrompt, listCredentialLatches, RedisAuthorisationGuard } from '../../src/custody';
import { loadJobs } from '../../src/jobs';
import { sandboxSecret, sandboxSecretsDir, startTestSandbox, writeJobFile } from '../helpers/night-fixture';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { StepClock } from './custody-fixture';

test('an approval at the prompt clears the latch of its credential', { timeout: 180_000 }, async () => {
  const { redis, prefix } = await testRedis();
  const dir = await tempDir();
  const clock = new StepClock();
  const sandbox = await startTestSandbox(dir, { totpNow: clock.now });
  try {
    await writeJobFile(path.join(dir, 'jobs'), {
      tenant: 'sakura',
      credentialId: 'sakura-eseal-rsa',
      providerUrl: sandbox.url,
      secretsDir: sandboxSecretsDir(dir, 'sakura'),
      signing: { custody: { mode: 'approval', via: 'prompt', kek: 'env:TEST_KEK' } },
    });
    const [job] = await loadJobs(path.join(dir, 'jobs'));
    const latch = { reason: 'HTTP 400 invalid_pin: The PIN is invalid', at: 1 };
    const credential = { providerUrl: sandbox.url, tenant: 'sakura', credentialId: 'sakura-eseal-rsa' };
    await new RedisAuthorisationGuard({ redis, prefix, credential }).latch(latch);
    await new RedisAuthorisationGuard({
      redis,
      prefix,
      credential: { ...credential, tenant: 'fuji', credentialId: 'fuji-eseal-ec' },
    }).latch(latch);
    const pin = await sandboxSecret(dir, 'sakura', 'sakura-eseal-rsa.pin');
    const secret = await sandboxSecret(dir, 'sakura', 'sakura-eseal-rsa.totp');

    const result = await approveAtPrompt({
      job: job!,
      count: 5,
      redis,
      prefix,
      logger: pino({ level: 'silent' }),
      env: { ...process.env, TEST_KEK: crypto.randomBytes(32).toString('hex') },
      ask: async (factor) => (factor === 'PIN' ? pin : totpCode(secret, { period: 1, now: clock.now() })),
    });
    assert.equal(result.numSignatures, 5);
    assert.deepEqual(
      (await listCredentialLatches(redis, prefix)).map((l) => l.tenant),
      ['fuji'],
      "sakura's latch is cleared, fuji's stays",
    );
  } finally {
    await sandbox.close();
  }
});

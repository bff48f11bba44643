// Service authorisation against the sandbox: a wrong client secret surfaces the provider's
// invalid_client, the token is fetched once and reused, and a token the provider has let expire is
// replaced once on its 401. Token lifetimes run on a ManualClock the tests move (the sandbox's, and the
// client's where it decides to refresh), so nothing expires because the machine was slow.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { CscError } from '../../src/csc';
import { ManualClock } from '../sandbox/sandbox-fixture';
import { makeDataDir, startFixture } from './sandbox-fixture';

/** Every test here runs in well under a second; the bound only stops a hang. */
const TIMEOUT = { timeout: 120_000 };

let dataDir: string;
before(async () => {
  dataDir = await makeDataDir();
});
after(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

test(
  'a wrong client secret fails with HTTP 401 invalid_client, and the secret is not in the message',
  TIMEOUT,
  async () => {
    const fx = await startFixture(dataDir);
    try {
      const secret = 'not-the-secret-3f9a';
      const client = await fx.clientFor('sakura-eseal-rsa', {
        auth: { kind: 'client_credentials', clientId: 'sakura-app', clientSecret: secret },
      });
      const err = await client.credentialInfo('sakura-eseal-rsa').then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CscError);
      assert.equal(err.endpoint, 'oauth2/token');
      assert.equal(err.status, 401);
      assert.equal(err.error, 'invalid_client');
      assert.equal(err.retryable, false);
      assert.match(err.message, /^CSC oauth2\/token failed: HTTP 401 invalid_client: /);
      assert.ok(!err.message.includes(secret));
      assert.equal(fx.sandbox.stats().token, 1);
      assert.equal(fx.sandbox.stats().credentialsInfo, 0);
    } finally {
      await fx.close();
    }
  },
);

test('the token comes from the oauth2 base that /info names, once, and is reused', TIMEOUT, async () => {
  const fx = await startFixture(dataDir);
  try {
    const client = await fx.clientFor('fuji-eseal-ec');
    const info = await client.info();
    assert.equal(info.oauth2, fx.sandbox.oauth2Url);
    assert.ok(info.authType.includes('oauth2client'));
    await client.credentialInfo('fuji-eseal-ec');
    await client.credentialInfo('fuji-eseal-ec-scal2');
    await Promise.all([client.credentialInfo('fuji-eseal-ec'), client.credentialInfo('fuji-eseal-ec')]);
    assert.equal(client.calls.token, 1);
    assert.equal(fx.sandbox.stats().token, 1);
    assert.equal(fx.sandbox.stats().credentialsInfo, 4);
    assert.equal(fx.sandbox.stats().errors, 0);
  } finally {
    await fx.close();
  }
});

test(
  'a token refused with 401 (expired at the provider) is replaced once and the call succeeds',
  TIMEOUT,
  async () => {
    const clock = new ManualClock();
    const fx = await startFixture(dataDir, { tokenLifetimeSec: 0.3, clock });
    try {
      // The client's clock stands still: it believes its token fresh, so only the 401 can tell it.
      const frozen = clock.now();
      const client = await fx.clientFor('fuji-eseal-ec', { now: () => frozen });
      await client.credentialInfo('fuji-eseal-ec');
      clock.advance(300); // the sandbox's clock reaches the token's end
      const facts = await client.credentialInfo('fuji-eseal-ec');
      assert.equal(facts.credentialId, 'fuji-eseal-ec');
      const stats = fx.sandbox.stats();
      assert.equal(stats.token, 2);
      assert.equal(stats.credentialsInfo, 3); // ok, refused (401 expired_token), ok
      assert.equal(stats.errors, 1);
      assert.equal(client.calls.token, 2);
    } finally {
      await fx.close();
    }
  },
);

test('a token near its stated expiry is refreshed before use, without a 401', TIMEOUT, async () => {
  // Client and sandbox on one clock: expires_in 1 s, which the client refreshes a tenth early.
  const clock = new ManualClock();
  const fx = await startFixture(dataDir, { tokenLifetimeSec: 1, clock });
  try {
    const client = await fx.clientFor('fuji-eseal-ec', { now: clock.now });
    await client.credentialInfo('fuji-eseal-ec');
    clock.advance(899); // before the refresh point: the token is reused
    await client.credentialInfo('fuji-eseal-ec');
    assert.equal(fx.sandbox.stats().token, 1);
    // Past the refresh point, still inside the token's life at the provider (which would accept it):
    // a new token is fetched first, so no call meets a 401.
    clock.advance(51);
    await client.credentialInfo('fuji-eseal-ec');
    const stats = fx.sandbox.stats();
    assert.equal(stats.token, 2);
    assert.equal(stats.errors, 0);
  } finally {
    await fx.close();
  }
});

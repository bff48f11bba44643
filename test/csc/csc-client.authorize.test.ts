// credentials/authorize against the sandbox: a wrong PIN and a wrong OTP each surface the provider's
// CSC error (and never the factor itself); good factors give a SAD with the spec's lifetime.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { CscError, SadManager, totpCode, type CscClient, type CredentialFacts } from '../../src/csc';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const ID = 'sakura-eseal-rsa';
let dataDir: string;
let fx: Fixture;
let client: CscClient;
let facts: CredentialFacts;
let pin: string;
let totpSecret: string;

before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir);
  client = await fx.clientFor(ID);
  facts = await client.credentialInfo(ID);
  const f = await fx.factorsFor(ID)();
  pin = f.pin!;
  totpSecret = f.totpSecret!;
  assert.equal(f.totpPeriod, 1); // this file's sandbox runs 1-second TOTP steps
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<CscError> {
  const err = await p.then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CscError, `a CscError, got ${String(err)}`);
  return err;
}

test(
  'the credential asks for PIN and a TOTP, as its credentials/info says',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    assert.deepEqual(facts.factors, ['PIN', 'OTP']);
    assert.equal(facts.otpGenerator, 'totp');
    assert.equal(facts.authMode, 'explicit');
    assert.equal(facts.scal, 1);
  },
);

test(
  'a wrong PIN surfaces the CSC error, without the PIN or OTP in the message',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const wrongPin = pin === '000000' ? '111111' : '000000';
    const otp = totpCode(totpSecret, { period: 1 });
    const err = await refusal(client.authorize({ credentialId: ID, numSignatures: 1, pin: wrongPin, otp }));
    assert.equal(err.endpoint, 'credentials/authorize');
    assert.equal(err.status, 400);
    assert.equal(err.error, 'invalid_pin');
    assert.equal(err.errorDescription, 'The PIN is invalid');
    assert.equal(err.message, 'CSC credentials/authorize failed: HTTP 400 invalid_pin: The PIN is invalid');
    assert.equal(err.retryable, false);
    for (const secret of [wrongPin, pin, otp]) assert.ok(!err.message.includes(secret));
  },
);

test('a wrong OTP surfaces the CSC error', { timeout: TEST_TIMEOUT_MS }, async () => {
  const good = totpCode(totpSecret, { period: 1 });
  const wrongOtp = String((Number(good) + 500_000) % 1_000_000).padStart(6, '0');
  const err = await refusal(client.authorize({ credentialId: ID, numSignatures: 1, pin, otp: wrongOtp }));
  assert.equal(err.status, 400);
  assert.equal(err.error, 'invalid_otp');
  assert.equal(err.message, 'CSC credentials/authorize failed: HTTP 400 invalid_otp: The OTP is invalid');
  assert.ok(!err.message.includes(wrongOtp));
});

test(
  'good factors give a SAD that expires after the lifetime the provider states',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const asked = Date.now();
    const got = await client.authorize({
      credentialId: ID,
      numSignatures: 3,
      pin,
      otp: totpCode(totpSecret, { period: 1 }),
    });
    assert.equal(typeof got.sad, 'string');
    assert.ok(got.sad.length > 10);
    assert.ok(got.expiresAt >= asked + 3600_000 && got.expiresAt <= Date.now() + 3600_000);
  },
);

test(
  'more signatures than multisign are refused by the provider and surfaced',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const err = await refusal(
      client.authorize({
        credentialId: ID,
        numSignatures: facts.multisign + 1,
        pin,
        otp: totpCode(totpSecret, { period: 1 }),
      }),
    );
    assert.equal(err.status, 400);
    assert.equal(err.error, 'invalid_request');
    assert.match(err.message, /multisign/);
  },
);

test(
  'after a refused PIN the SAD manager does not send the factors again',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    fx.sandbox.resetStats();
    const sadManager = new SadManager({
      client,
      credential: facts,
      factors: async () => ({ pin: pin === '000000' ? '111111' : '000000', totpSecret }),
    });
    const hash = Buffer.alloc(32, 7);
    const first = await refusal(sadManager.reserve([hash]));
    assert.equal(first.error, 'invalid_pin');
    const second = await refusal(sadManager.reserve([hash]));
    assert.equal(second.error, 'invalid_pin');
    assert.equal(second.retryable, false);
    assert.match(second.message, /refused earlier with HTTP 400 invalid_pin: The PIN is invalid/);
    assert.equal(second.status, first.status);
    assert.equal(fx.sandbox.stats().authorize, 1);
    assert.equal(sadManager.authorisations, 0);
  },
);

test(
  'a factor the credential needs but nobody configured fails before any request',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    fx.sandbox.resetStats();
    const sadManager = new SadManager({ client, credential: facts, factors: async () => ({ pin }) });
    const err = await refusal(sadManager.reserve([Buffer.alloc(32, 1)]));
    assert.match(err.message, /credential sakura-eseal-rsa: needs OTP but none is configured/);
    assert.equal(fx.sandbox.stats().authorize, 0);
  },
);

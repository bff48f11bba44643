// credentials/authorize: PIN and TOTP checks, a TOTP code accepted only once (RFC 6238 section 5.2),
// lockout after repeated failures (and its end), numSignatures bounds, and the SCAL2 requirement to
// bind hashes. The sandbox runs on a ManualClock (TOTP and lockout alike): time steps and the end of a
// lockout come when the test moves the clock, never because the machine was slow.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  authorize,
  b64,
  credential,
  currentOtp,
  digestOf,
  errorOf,
  freshOtp,
  getToken,
  ManualClock,
  noteAccepted,
  secret,
  SHA256_OID,
  startFixture,
  wrongOtp,
  type Fixture,
} from './sandbox-fixture';

/** Every test here runs in well under a second; the bound only stops a hang. */
const TIMEOUT = { timeout: 120_000 };

// Far longer than the clock moves while the test looks at a locked credential (a fresh TOTP step each
// authorisation moves it up to 1 s), so the lock ends only when the test moves the clock to its end.
const LOCK_MS = 300_000;
const clock = new ManualClock();
let fx: Fixture;
let fujiToken: string;
let sakuraToken: string;

before(async () => {
  fx = await startFixture({
    lockAfterFailures: 4,
    lockSeconds: LOCK_MS / 1000,
    multisign: { 'fuji-eseal-ec': 10 },
    clock,
  });
  fujiToken = await getToken(fx.sandbox, 'fuji-app');
  sakuraToken = await getToken(fx.sandbox, 'sakura-app');
});
after(async () => fx.close());

test('correct PIN and current TOTP give a SAD with expiresIn', TIMEOUT, async () => {
  const res = await authorize(fx.sandbox, sakuraToken, credential(fx.sandbox, 'sakura-eseal-rsa'), {
    numSignatures: 3,
  });
  assert.equal(res.status, 200);
  assert.match(String(res.body.SAD), /^[A-Za-z0-9_-]{40,}$/);
  assert.equal(res.body.expiresIn, 3600);
});

test('a wrong PIN is 400 invalid_pin and a wrong OTP is 400 invalid_otp', TIMEOUT, async () => {
  const cred = credential(fx.sandbox, 'sakura-eseal-rsa');
  const pin = await secret(cred.pinFile);
  const badPin = pin === '000000' ? '000001' : '000000';
  const wrongPin = await authorize(fx.sandbox, sakuraToken, cred, {}, { pin: badPin });
  assert.deepEqual(errorOf(wrongPin), {
    status: 400,
    error: 'invalid_pin',
    description: 'The PIN is invalid',
  });
  const wrongCode = await authorize(
    fx.sandbox,
    sakuraToken,
    cred,
    {},
    { otp: await wrongOtp(cred, fx.clock.now()) },
  );
  assert.deepEqual(errorOf(wrongCode), {
    status: 400,
    error: 'invalid_otp',
    description: 'The OTP is invalid',
  });
  const notDigits = await authorize(fx.sandbox, sakuraToken, cred, {}, { otp: 'abcdef' });
  assert.equal(notDigits.body.error, 'invalid_otp');
  // Neither refusal echoes a factor back.
  assert.ok(!JSON.stringify([wrongPin.body, wrongCode.body]).includes(pin));
  // Three failures stay below this file's lockAfterFailures (4), and a success resets the count.
  assert.equal((await authorize(fx.sandbox, sakuraToken, cred)).status, 200);
});

test(
  'a TOTP code is accepted once: its time step, or an earlier one, is refused as already used',
  TIMEOUT,
  async () => {
    const cred = credential(fx.sandbox, 'sakura-eseal-rsa');
    assert.equal(cred.totpPeriodSec, 1);
    const { otp, step } = await freshOtp(fx.sandbox, cred);
    assert.equal((await authorize(fx.sandbox, sakuraToken, cred, {}, { otp })).status, 200);
    noteAccepted(fx.sandbox, cred, step);

    const replayed = await authorize(fx.sandbox, sakuraToken, cred, {}, { otp });
    assert.equal(replayed.status, 400);
    assert.equal(replayed.body.error, 'invalid_otp');
    assert.match(String(replayed.body.error_description), /already used/);

    // The next step's code is still taken (one step either side is tolerated), and then the step before
    // it, though within the tolerance window, is a replay.
    const next = await currentOtp(cred, (step + 1) * 1000);
    assert.equal((await authorize(fx.sandbox, sakuraToken, cred, {}, { otp: next })).status, 200);
    noteAccepted(fx.sandbox, cred, step + 1);
    const older = await authorize(fx.sandbox, sakuraToken, cred, {}, { otp });
    assert.deepEqual(errorOf(older), {
      status: 400,
      error: 'invalid_otp',
      description: 'The OTP was already used (a code is accepted once); send the code of a later time step',
    });
  },
);

test(
  'a refused request spends no time step: after a wrong PIN the same code still authorises',
  TIMEOUT,
  async () => {
    const cred = credential(fx.sandbox, 'sakura-eseal-rsa');
    const pin = await secret(cred.pinFile);
    const { otp, step } = await freshOtp(fx.sandbox, cred);
    const wrongPin = await authorize(
      fx.sandbox,
      sakuraToken,
      cred,
      {},
      { otp, pin: pin === '000000' ? '1' : '0' },
    );
    assert.equal(wrongPin.body.error, 'invalid_pin');
    assert.equal((await authorize(fx.sandbox, sakuraToken, cred, {}, { otp })).status, 200);
    noteAccepted(fx.sandbox, cred, step);
  },
);

test(
  'N consecutive failures lock the credential, correct factors included, until lockSeconds pass',
  TIMEOUT,
  async () => {
    const cred = credential(fx.sandbox, 'fuji-eseal-ec');
    const otp = await wrongOtp(cred, fx.clock.now());
    for (let i = 0; i < 4; i++) {
      const res = await authorize(fx.sandbox, fujiToken, cred, {}, { otp });
      assert.equal(res.body.error, 'invalid_otp', `failure ${i + 1}`);
    }
    const lockedUntil = clock.now() + LOCK_MS; // the clock stood still since the fourth failure
    const locked = await authorize(fx.sandbox, fujiToken, cred);
    assert.deepEqual(errorOf(locked), {
      status: 400,
      error: 'invalid_request',
      description: `Credential locked after repeated authentication failures; retry in ${Math.ceil((lockedUntil - clock.now()) / 1000)} s`,
    });
    // The other credential of the same tenant is unaffected.
    assert.equal(
      (
        await authorize(fx.sandbox, fujiToken, credential(fx.sandbox, 'fuji-eseal-ec-scal2'), {
          hashes: [b64(digestOf('x'))],
          hashAlgorithmOID: SHA256_OID,
        })
      ).status,
      200,
    );

    // Its last millisecond: still locked (a code of the current step, so the clock stays where it is).
    clock.advance(lockedUntil - 1 - clock.now());
    const lastMs = await authorize(
      fx.sandbox,
      fujiToken,
      cred,
      {},
      { otp: await currentOtp(cred, clock.now()) },
    );
    assert.match(errorOf(lastMs).description, /^Credential locked .*; retry in 1 s$/);
    clock.advance(1);
    assert.equal((await authorize(fx.sandbox, fujiToken, cred)).status, 200);
  },
);

test('numSignatures above multisign, below 1 or not an integer is refused', TIMEOUT, async () => {
  const cred = credential(fx.sandbox, 'fuji-eseal-ec'); // multisign overridden to 10
  assert.equal(cred.multisign, 10);
  assert.equal((await authorize(fx.sandbox, fujiToken, cred, { numSignatures: 10 })).status, 200);
  const tooMany = await authorize(fx.sandbox, fujiToken, cred, { numSignatures: 11 });
  assert.equal(tooMany.status, 400);
  assert.equal(tooMany.body.error, 'invalid_request');
  assert.match(String(tooMany.body.error_description), /^Numbers of signatures is too high/);
  const zero = await authorize(fx.sandbox, fujiToken, cred, { numSignatures: 0 });
  assert.deepEqual(errorOf(zero), {
    status: 400,
    error: 'invalid_request',
    description: 'Invalid value for parameter numSignatures',
  });
  const text = await authorize(fx.sandbox, fujiToken, cred, { numSignatures: '2' });
  assert.equal(text.body.error_description, 'Missing (or invalid type) integer parameter numSignatures');
});

test(
  'SCAL2 authorisation needs hashes and hashAlgorithmOID, as many hashes as numSignatures',
  TIMEOUT,
  async () => {
    const cred = credential(fx.sandbox, 'fuji-eseal-ec-scal2');
    const noHashes = await authorize(fx.sandbox, fujiToken, cred);
    assert.deepEqual(errorOf(noHashes), {
      status: 400,
      error: 'invalid_request',
      description: 'Missing (or invalid type) array parameter hashes',
    });
    const noAlg = await authorize(fx.sandbox, fujiToken, cred, { hashes: [b64(digestOf('a'))] });
    assert.equal(noAlg.body.error_description, 'Missing (or invalid type) string parameter hashAlgorithmOID');
    const mismatch = await authorize(fx.sandbox, fujiToken, cred, {
      numSignatures: 2,
      hashes: [b64(digestOf('a'))],
      hashAlgorithmOID: SHA256_OID,
    });
    assert.equal(mismatch.status, 400);
    assert.match(String(mismatch.body.error_description), /^Invalid parameter hashes/);
    const shortHash = await authorize(fx.sandbox, fujiToken, cred, {
      hashes: [b64(Buffer.alloc(20))],
      hashAlgorithmOID: SHA256_OID,
    });
    assert.match(String(shortHash.body.error_description), /^Invalid digest value length/);
  },
);

test('authData must carry both PIN and OTP objects', TIMEOUT, async () => {
  const cred = credential(fx.sandbox, 'sakura-eseal-rsa');
  const res = await authorize(fx.sandbox, sakuraToken, cred, { authData: [{ id: 'PIN', value: '123456' }] });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, 'invalid_request');
  assert.match(String(res.body.error_description), /^Invalid parameter authData/);
});

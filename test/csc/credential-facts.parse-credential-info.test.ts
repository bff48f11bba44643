// Reading credentials/info answers of different dialects (v2 auth objects, v1 PIN/OTP presence) into
// credential facts, and refusing credentials that cannot seal. The certificate is a real one from the
// sandbox; the answers around it are written here to cover what the sandbox does not send.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import {
  CscClient,
  CscError,
  OID,
  SadManager,
  parseCredentialInfo,
  type CredentialFacts,
} from '../../src/csc';
import { makeDataDir, startFixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let dataDir: string;
let rsaCert: string;
let ecCert: string;
let sandboxFacts: CredentialFacts;

before(async () => {
  dataDir = await makeDataDir();
  const fx = await startFixture(dataDir);
  try {
    const rsa = await (await fx.clientFor('sakura-eseal-rsa')).credentialInfo('sakura-eseal-rsa');
    rsaCert = rsa.certificates[0]!.toString('base64');
    sandboxFacts = await (await fx.clientFor('fuji-eseal-ec')).credentialInfo('fuji-eseal-ec');
    ecCert = sandboxFacts.certificates[0]!.toString('base64');
  } finally {
    await fx.close();
  }
});
after(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

function refused(body: Record<string, unknown>, pattern: RegExp): void {
  assert.throws(
    () => parseCredentialInfo('c1', body),
    (err: unknown) =>
      err instanceof CscError && err.endpoint === 'credentials/info' && pattern.test(err.message),
  );
}

test(
  'the sandbox answer (v2 auth objects, "PIN AND OTP") becomes the expected facts',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    assert.equal(sandboxFacts.keyAlgorithm, 'ecdsa');
    assert.equal(sandboxFacts.signAlgoOid, OID.ecdsaWithSHA256);
    assert.equal(sandboxFacts.ecCurve, 'prime256v1');
    assert.deepEqual(sandboxFacts.factors, ['PIN', 'OTP']);
    assert.deepEqual(sandboxFacts.authDataIds, { PIN: 'PIN', OTP: 'OTP' });
    assert.equal(sandboxFacts.authExpression, 'PIN AND OTP');
    assert.equal(sandboxFacts.multisign, 500);
  },
);

test(
  'a v1-style answer (authMode, PIN/OTP presence, online OTP) is understood',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const facts = parseCredentialInfo('c1', {
      key: { status: 'enabled', algo: [OID.rsaEncryption] },
      cert: { status: 'valid', certificates: [rsaCert] },
      authMode: 'explicit',
      PIN: { presence: 'true', format: 'N' },
      OTP: { presence: 'true', type: 'online', ID: 'otp-sms' },
      multisign: 3,
    });
    assert.equal(facts.keyAlgorithm, 'rsa');
    assert.equal(facts.signAlgoOid, OID.rsaEncryption);
    assert.deepEqual(facts.factors, ['PIN', 'OTP']);
    assert.equal(facts.otpGenerator, 'other');
    assert.deepEqual(facts.authDataIds, { PIN: 'PIN', OTP: 'otp-sms' });
    assert.equal(facts.multisign, 3);
    assert.equal(facts.scal, 1);
  },
);

test(
  'defaults the spec gives: SCAL 1, multisign 1, sha256 algorithms when key/algo is empty',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const facts = parseCredentialInfo('c1', {
      key: {},
      cert: { certificates: [ecCert] },
      auth: { mode: 'explicit' },
    });
    assert.equal(facts.scal, 1);
    assert.equal(facts.multisign, 1);
    assert.equal(facts.signAlgoOid, OID.ecdsaWithSHA256);
    assert.deepEqual(facts.factors, []);
    assert.equal(parseCredentialInfo('c1', { cert: { certificates: [ecCert] }, SCAL: '2' }).scal, 2);
  },
);

test(
  'credentials that cannot seal are refused with the credential named',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    refused({ key: {}, cert: {} }, /credential c1: answer has no certificates/);
    refused(
      { key: { status: 'disabled' }, cert: { certificates: [rsaCert] } },
      /credential c1: key status is disabled/,
    );
    refused({ cert: { status: 'revoked', certificates: [rsaCert] } }, /certificate status is revoked/);
    refused({ key: { algo: [OID.rsassaPss] }, cert: { certificates: [rsaCert] } }, /none of key\/algo/);
    refused({ key: { algo: [OID.ecdsaWithSHA256] }, cert: { certificates: [rsaCert] } }, /none of key\/algo/);
    refused({ cert: { certificates: [Buffer.from('nope').toString('base64')] } }, /not an X.509 certificate/);
    refused({ cert: { certificates: [ecCert] }, SCAL: '3' }, /SCAL 3 is neither 1 nor 2/);
  },
);

test(
  'the SAD manager refuses credentials whose factors it cannot present, before any request',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = new CscClient({
      baseUrl: 'http://127.0.0.1:9/csc/v2', // nothing listens: a request would fail differently
      auth: { kind: 'client_credentials', clientId: 'c', clientSecret: 's' },
    });
    const hash = Buffer.alloc(32);
    const online = new SadManager({
      client,
      credential: { ...sandboxFacts, otpGenerator: 'other' },
      factors: async () => ({ pin: '1', totpSecret: 'JBSWY3DPEHPK3PXPJBSWY3DP' }),
    });
    await assert.rejects(online.reserve([hash]), /its OTP is not a TOTP the application can compute/);
    const oauth = new SadManager({
      client,
      credential: { ...sandboxFacts, authMode: 'oauth2code' },
      factors: async () => ({}),
    });
    await assert.rejects(
      oauth.reserve([hash]),
      /auth mode oauth2code cannot be authorised with stored factors/,
    );
    assert.equal(client.calls.token + client.calls.authorize, 0);
  },
);

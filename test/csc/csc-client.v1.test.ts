// The client speaking CSC API v1.0.4.0 to the sandbox's /csc/v1: credentials/info facts from the v1
// answer (authMode, PIN/OTP groups), credentials/authorize with top-level PIN + OTP and, under SCAL2,
// a `hash` array, signatures/signHash with `hash` + `hashAlgo`; refusals as CscError; an authorize
// answer without expiresIn (the spec's default applies); no credential-scope token under v1.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CscError, type CscClient, type CredentialFacts } from '../../src/csc';
import { totpCode } from '../../src/csc';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const RSA = 'sakura-eseal-rsa';
const EC = 'fuji-eseal-ec';
const SCAL2 = 'fuji-eseal-ec-scal2';

let dataDir: string;
let fx: Fixture;
let v1Url: string;

before(async () => {
  dataDir = await makeDataDir();
  // SADs live 600 s here, so the client's default (3600 s, for an answer without expiresIn) shows.
  fx = await startFixture(dataDir, { sadLifetimeSec: 600 });
  v1Url = fx.sandbox.url.replace(/\/csc\/v2$/, '/csc/v1');
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const clientV1 = (id: string, baseUrl = v1Url) => fx.clientFor(id, { baseUrl, apiVersion: 'v1' });

/** PIN and a TOTP code of a time step not used before (the sandbox's TOTP clock moves on one step). */
async function factors(id: string): Promise<{ pin: string; otp: string }> {
  const f = await fx.factorsFor(id)();
  await fx.clock.sleep(1000);
  return { pin: f.pin!, otp: totpCode(f.totpSecret!, { period: 1, now: fx.clock.now() }) };
}

async function refusal(p: Promise<unknown>): Promise<CscError> {
  const err = await p.then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CscError, `a CscError, got ${String(err)}`);
  return err;
}

/** Documents and their SHA-256 hashes. */
function documents(n: number, tag: string): { data: Buffer[]; hashes: Buffer[] } {
  const data = Array.from({ length: n }, (_, i) => Buffer.from(`${tag} invoice ${i} ${crypto.randomUUID()}`));
  return { data, hashes: data.map((d) => crypto.createHash('sha256').update(d).digest()) };
}

function assertVerifies(facts: CredentialFacts, data: Buffer[], signatures: Buffer[]): void {
  const key = new crypto.X509Certificate(facts.certificates[0]!).publicKey;
  assert.equal(signatures.length, data.length);
  signatures.forEach((sig, i) =>
    assert.ok(crypto.verify('sha256', data[i]!, key, sig), `signature ${i} verifies against the certificate`),
  );
}

async function postJson(url: string, body: unknown, token?: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function serviceToken(id: string): Promise<string> {
  const c = fx.credential(id);
  const secret = (await fs.readFile(c.clientSecretFile, 'utf8')).trim();
  const res = await fetch(`${fx.sandbox.oauth2Url}/oauth2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: c.clientId,
      client_secret: secret,
    }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

test(
  '/csc/v1 answers in v1 shapes: info specs 1.0.4.0, credentials/info with authMode and PIN/OTP groups',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const info = await (await clientV1(RSA)).info();
    assert.equal(info.specs, '1.0.4.0');
    assert.equal(info.oauth2, fx.sandbox.oauth2Url);
    assert.ok(info.methods.includes('signatures/signHash'));

    const token = await serviceToken(RSA);
    const { status, body } = await postJson(
      `${v1Url}/credentials/info`,
      { credentialID: RSA, certificates: 'chain', certInfo: true, authInfo: true },
      token,
    );
    assert.equal(status, 200);
    assert.equal(body.auth, undefined, 'v1 has no auth object');
    assert.equal(body.authMode, 'explicit');
    assert.equal(body.SCAL, '1');
    assert.deepEqual(body.PIN, {
      presence: 'true',
      format: 'N',
      label: 'PIN',
      description: 'The 6-digit e-seal PIN',
    });
    const otp = body.OTP as Record<string, unknown>;
    assert.equal(otp.presence, 'true');
    assert.equal(otp.type, 'offline');
    assert.equal(otp.provider, 'totp');
    assert.equal(typeof otp.ID, 'string');
    assert.equal((body.cert as { certificates: string[] }).certificates.length, 2);
  },
);

test(
  'credentials/info over v1 gives the facts: key algorithm, multisign, SCAL, factors',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const rsa = await (await clientV1(RSA)).credentialInfo(RSA);
    assert.equal(rsa.keyAlgorithm, 'rsa');
    assert.equal(rsa.multisign, 500);
    assert.equal(rsa.scal, 1);
    assert.equal(rsa.authMode, 'explicit');
    assert.deepEqual(rsa.factors, ['PIN', 'OTP']);
    assert.equal(rsa.otpGenerator, 'totp');
    assert.equal(rsa.certificateSerialHex, fx.credential(RSA).certificateSerialHex);

    const ec = await (await clientV1(EC)).credentialInfo(EC);
    assert.equal(ec.keyAlgorithm, 'ecdsa');
    assert.equal(ec.ecCurve, 'prime256v1');
    assert.equal(ec.scal, 1);
    assert.deepEqual(ec.factors, ['PIN', 'OTP']);

    const scal2 = await (await clientV1(SCAL2)).credentialInfo(SCAL2);
    assert.equal(scal2.scal, 2);
    assert.equal(scal2.keyAlgorithm, 'ecdsa');
  },
);

for (const id of [RSA, EC]) {
  test(
    `${id}: authorize with PIN + TOTP, then signHash of 3 hashes that verify against the certificate`,
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const client = await clientV1(id);
      const facts = await client.credentialInfo(id);
      const asked = Date.now();
      const { sad, expiresAt } = await client.authorize({
        credentialId: id,
        numSignatures: 3,
        ...(await factors(id)),
      });
      assert.ok(expiresAt >= asked + 600_000 && expiresAt <= Date.now() + 600_000, 'the expiresIn stated');
      const { data, hashes } = documents(3, id);
      const before = fx.sandbox.stats();
      const signatures = await client.signHash({ credential: facts, sad, hashes });
      assertVerifies(facts, data, signatures);
      assert.equal(fx.sandbox.stats().signHash, before.signHash + 1);
      assert.equal(fx.sandbox.stats().signatures, before.signatures + 3);
      assert.equal(client.calls.signHash, 1);
    },
  );
}

test(
  'SCAL2 over v1: the SAD is bound to the `hash` array; an unbound hash is refused, the bound ones sign',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await clientV1(SCAL2);
    const facts = await client.credentialInfo(SCAL2);

    // Without hashes a SCAL2 credential cannot be authorised; the refusal names v1's parameter.
    const unbound = await refusal(
      client.authorize({ credentialId: SCAL2, numSignatures: 2, ...(await factors(SCAL2)) }),
    );
    assert.equal(unbound.status, 400);
    assert.equal(unbound.error, 'invalid_request');
    assert.equal(unbound.errorDescription, 'Missing (or invalid type) array parameter hash');

    const { data, hashes } = documents(2, 'scal2');
    const { sad } = await client.authorize({
      credentialId: SCAL2,
      numSignatures: 2,
      hashes,
      ...(await factors(SCAL2)),
    });
    const other = documents(1, 'not approved').hashes;
    const err = await refusal(client.signHash({ credential: facts, sad, hashes: other }));
    assert.equal(err.status, 400);
    assert.equal(err.error, 'invalid_request');
    assert.equal(err.errorDescription, 'Hash is not authorized by the SAD (hash[0])');

    assertVerifies(facts, data, await client.signHash({ credential: facts, sad, hashes }));
  },
);

test(
  'a wrong PIN over v1 is a CscError with the CSC error, and neither factor is in the message',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await clientV1(RSA);
    await client.credentialInfo(RSA);
    const { pin, otp } = await factors(RSA);
    const wrongPin = pin === '000000' ? '111111' : '000000';
    const err = await refusal(client.authorize({ credentialId: RSA, numSignatures: 1, pin: wrongPin, otp }));
    assert.equal(err.endpoint, 'credentials/authorize');
    assert.equal(err.status, 400);
    assert.equal(err.error, 'invalid_pin');
    assert.equal(err.errorDescription, 'The PIN is invalid');
    assert.equal(err.retryable, false);
    for (const secret of [wrongPin, pin, otp]) assert.ok(!err.message.includes(secret));
  },
);

test(
  '/csc/v1 refuses v2 request shapes: authData instead of PIN/OTP, hashes instead of hash',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const token = await serviceToken(RSA);
    const { pin, otp } = await factors(RSA);
    const authorize = await postJson(
      `${v1Url}/credentials/authorize`,
      {
        credentialID: RSA,
        numSignatures: 1,
        authData: [
          { id: 'PIN', value: pin },
          { id: 'OTP', value: otp },
        ],
      },
      token,
    );
    assert.equal(authorize.status, 400);
    assert.deepEqual(authorize.body, {
      error: 'invalid_request',
      error_description: 'Missing (or invalid type) string parameter PIN',
    });
    const sign = await postJson(
      `${v1Url}/signatures/signHash`,
      {
        credentialID: RSA,
        SAD: 'whatever',
        hashes: [Buffer.alloc(32).toString('base64')],
        signAlgo: '1.2.840.113549.1.1.11',
      },
      token,
    );
    assert.equal(sign.status, 400);
    assert.equal(sign.body.error_description, 'Missing (or invalid type) array parameter hash');
  },
);

test(
  'an authorize answer without expiresIn is accepted: the spec default of 3600 s applies',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // A provider that leaves out the OPTIONAL expiresIn, played by a proxy that strips it.
    const target = new URL(fx.sandbox.url);
    let stripped = 0;
    const proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const upstream = http.request(
          {
            host: target.hostname,
            port: target.port,
            path: req.url,
            method: req.method,
            headers: { ...req.headers, host: target.host },
          },
          (up) => {
            const body: Buffer[] = [];
            up.on('data', (c: Buffer) => body.push(c));
            up.on('end', () => {
              let text = Buffer.concat(body).toString('utf8');
              if (req.url?.endsWith('/credentials/authorize') && up.statusCode === 200) {
                const parsed = JSON.parse(text) as Record<string, unknown>;
                assert.equal(parsed.expiresIn, 600);
                delete parsed.expiresIn;
                stripped++;
                text = JSON.stringify(parsed);
              }
              res.writeHead(up.statusCode ?? 502, { 'Content-Type': 'application/json' });
              res.end(text);
            });
          },
        );
        upstream.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    after(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const { port } = proxy.address() as AddressInfo;

    const client = await clientV1(RSA, `http://127.0.0.1:${port}/csc/v1`);
    const facts = await client.credentialInfo(RSA);
    const asked = Date.now();
    const { sad, expiresAt } = await client.authorize({
      credentialId: RSA,
      numSignatures: 1,
      ...(await factors(RSA)),
    });
    assert.equal(stripped, 1);
    assert.ok(expiresAt >= asked + 3600_000 && expiresAt <= Date.now() + 3600_000, 'the default lifetime');
    const { data, hashes } = documents(1, 'no expiresIn');
    assertVerifies(facts, data, await client.signHash({ credential: facts, sad, hashes }));
  },
);

test(
  'a credential-scope token is refused under v1 before any request is sent',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client: CscClient = await clientV1(RSA);
    const facts = await client.credentialInfo(RSA);
    const err = await refusal(
      client.signHash({ credential: facts, credentialToken: 'token', hashes: documents(1, 'x').hashes }),
    );
    assert.equal(err.endpoint, 'signatures/signHash');
    assert.equal(err.retryable, false);
    assert.match(err.message, /CSC v2 authorisation; this provider speaks CSC v1\.0\.4/);
    assert.equal(client.calls.signHash, 0);
  },
);

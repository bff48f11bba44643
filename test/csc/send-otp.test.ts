// Online OTP (CSC credentials/sendOTP), client and sandbox: a credential the sandbox starts with
// `onlineOtp` is described as such by credentials/info (v2: an OTP object whose generator is not
// totp; v1: OTP/type "online"), refuses its TOTP, and accepts only the code sendOTP "texted" to the
// approver's phone (a 0600 file), once. Failures count towards the lockout. Other credentials are as
// before. The client sends sendOTP once, with the spec's body, and never re-sends it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { CscClient, CscError, totpCode } from '../../src/csc';
import { OnlineOtpStore } from '../../src/sandbox/context';
import type { LoadedCredential } from '../../src/sandbox/provisioning';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const ONLINE = 'sakura-eseal-rsa';
const OFFLINE = 'fuji-eseal-ec';

let dataDir: string;
let fx: Fixture;
let v1Url: string;

before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir, { onlineOtp: [ONLINE] });
  v1Url = fx.sandbox.url.replace(/\/csc\/v2$/, '/csc/v1');
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const phone = (id: string, dir = dataDir) => path.join(dir, 'outbox-otp', `${id}.txt`);
const delivered = async (id: string, dir = dataDir) => (await fs.readFile(phone(id, dir), 'utf8')).trim();

/** The PIN and a fresh TOTP code of the credential (the sandbox's TOTP clock moves on one step). */
async function pinAndTotp(f: Fixture, id: string): Promise<{ pin: string; totp: string }> {
  const k = await f.factorsFor(id)();
  await f.clock.sleep(1000);
  return { pin: k.pin!, totp: totpCode(k.totpSecret!, { period: 1, now: f.clock.now() }) };
}

function refusedWith(error: string, description?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CscError, String(err));
    assert.equal(err.error, error, err.message);
    if (description) assert.match(err.errorDescription ?? '', description);
    return true;
  };
}

test(
  'v2: facts say the OTP is not a TOTP; the TOTP is refused; the sent code works once',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await fx.clientFor(ONLINE);
    const facts = await client.credentialInfo(ONLINE);
    assert.deepEqual(facts.factors, ['PIN', 'OTP']);
    assert.equal(facts.otpGenerator, 'other');
    const { pin, totp } = await pinAndTotp(fx, ONLINE);

    await assert.rejects(
      client.authorize({ credentialId: ONLINE, numSignatures: 1, pin, otp: totp }),
      refusedWith('invalid_otp'),
    );

    await client.sendOtp(ONLINE);
    assert.equal(client.calls.sendOtp, 1);
    const code = await delivered(ONLINE);
    assert.match(code, /^\d{6}$/);
    assert.equal((await fs.stat(phone(ONLINE))).mode & 0o777, 0o600);
    const got = await client.authorize({ credentialId: ONLINE, numSignatures: 2, pin, otp: code });
    assert.ok(got.sad.length > 0);

    await assert.rejects(
      client.authorize({ credentialId: ONLINE, numSignatures: 1, pin, otp: code }),
      refusedWith('invalid_otp', /already used/),
    );
    // A new code replaces the old one; only the newest works.
    await client.sendOtp(ONLINE);
    const first = await delivered(ONLINE);
    await client.sendOtp(ONLINE);
    const second = await delivered(ONLINE);
    if (first !== second) {
      await assert.rejects(
        client.authorize({ credentialId: ONLINE, numSignatures: 1, pin, otp: first }),
        refusedWith('invalid_otp'),
      );
    }
    await client.authorize({ credentialId: ONLINE, numSignatures: 1, pin, otp: second });
  },
);

test(
  'v2: a credential without onlineOtp is as before: TOTP facts, TOTP works, sendOTP refused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await fx.clientFor(OFFLINE);
    const facts = await client.credentialInfo(OFFLINE);
    assert.equal(facts.otpGenerator, 'totp');
    await assert.rejects(
      client.sendOtp(OFFLINE),
      refusedWith('invalid_request', /Invalid parameter credentialID: .*offline OTP/),
    );
    const { pin, totp } = await pinAndTotp(fx, OFFLINE);
    await client.authorize({ credentialId: OFFLINE, numSignatures: 1, pin, otp: totp });
    // Another tenant's online credential is refused like an unknown one, and nothing is sent.
    await fs.rm(phone(ONLINE), { force: true });
    await assert.rejects(client.sendOtp(ONLINE), refusedWith('invalid_request', /credentialID/));
    await assert.rejects(fs.stat(phone(ONLINE)), { code: 'ENOENT' });
  },
);

test(
  'v1: OTP/type online; sendOTP (200) then authorize with the delivered code, once; TOTP refused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await fx.clientFor(ONLINE, { baseUrl: v1Url, apiVersion: 'v1' });
    const facts = await client.credentialInfo(ONLINE);
    assert.equal(facts.otpGenerator, 'other');
    const offline = await (
      await fx.clientFor(OFFLINE, { baseUrl: v1Url, apiVersion: 'v1' })
    ).credentialInfo(OFFLINE);
    assert.equal(offline.otpGenerator, 'totp');

    const { pin, totp } = await pinAndTotp(fx, ONLINE);
    await client.sendOtp(ONLINE);
    await assert.rejects(
      client.authorize({ credentialId: ONLINE, numSignatures: 1, pin, otp: totp }),
      refusedWith('invalid_otp'),
    );
    const code = await delivered(ONLINE);
    const got = await client.authorize({ credentialId: ONLINE, numSignatures: 1, pin, otp: code });
    assert.ok(got.sad.length > 0);
    await assert.rejects(
      client.authorize({ credentialId: ONLINE, numSignatures: 1, pin, otp: code }),
      refusedWith('invalid_otp'),
    );
  },
);

test(
  'wrong online codes count towards the lockout; a locked credential gets no code',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await makeDataDir();
    const locking = await startFixture(dir, { onlineOtp: [ONLINE], lockAfterFailures: 2, lockSeconds: 60 });
    try {
      const client = await locking.clientFor(ONLINE);
      await client.credentialInfo(ONLINE);
      const { pin } = await pinAndTotp(locking, ONLINE);
      await client.sendOtp(ONLINE);
      const code = await delivered(ONLINE, dir);
      const wrong = code === '000000' ? '000001' : '000000';
      for (let i = 0; i < 2; i++) {
        await assert.rejects(
          client.authorize({ credentialId: ONLINE, numSignatures: 1, pin, otp: wrong }),
          refusedWith('invalid_otp'),
        );
      }
      await assert.rejects(
        client.authorize({ credentialId: ONLINE, numSignatures: 1, pin, otp: code }),
        refusedWith('invalid_request', /locked/),
      );
      await assert.rejects(client.sendOtp(ONLINE), refusedWith('invalid_request', /locked/));
    } finally {
      await locking.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'an online code expires after 5 minutes (store, on a test clock)',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await makeDataDir();
    try {
      let now = 1_000_000;
      const known = new Map([[ONLINE, { public: { authMode: 'explicit' } } as unknown as LoadedCredential]]);
      const store = new OnlineOtpStore([ONLINE], known, dir, 5 * 60_000, () => now);
      store.send(ONLINE);
      const code = (await fs.readFile(path.join(dir, `${ONLINE}.txt`), 'utf8')).trim();
      assert.deepEqual(store.check(ONLINE, code), { ok: true });
      now += 5 * 60_000;
      assert.deepEqual(store.check(ONLINE, code), { ok: false, replayed: false });
      assert.throws(() => new OnlineOtpStore(['nobody'], known, dir), /unknown credential nobody/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'client: sendOTP body per spec, 204 and empty 200 accepted, a 503 is not re-sent',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const seen: Array<{ path: string; body: unknown }> = [];
    const answers: Array<(res: http.ServerResponse) => void> = [
      (res) => res.writeHead(204).end(),
      (res) => res.writeHead(200, { 'Content-Length': 0 }).end(),
      (res) =>
        res
          .writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '0' })
          .end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'busy' })),
    ];
    const server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        seen.push({ path: req.url ?? '', body: JSON.parse(text) as unknown });
        answers[seen.length - 1]!(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const client = new CscClient({
        baseUrl: `http://127.0.0.1:${port}/csc/v2`,
        auth: { kind: 'bearer', token: 'static-test-token' },
        timeoutMs: 5000,
      });
      await client.sendOtp('cred-1');
      await client.sendOtp('cred-1', 'run 42');
      await assert.rejects(client.sendOtp('cred-1'), (err: unknown) => {
        assert.ok(err instanceof CscError);
        assert.equal(err.status, 503);
        return true;
      });
      assert.equal(seen.length, 3, 'the 503 was re-sent');
      assert.equal(client.calls.sendOtp, 3);
      assert.deepEqual(
        seen.map((s) => s.path),
        Array(3).fill('/csc/v2/credentials/sendOTP'),
      );
      assert.deepEqual(seen[0]!.body, { credentialID: 'cred-1' });
      assert.deepEqual(seen[1]!.body, { credentialID: 'cred-1', clientData: 'run 42' });
    } finally {
      server.close();
    }
  },
);

// Re-sends of credentials/authorize happen in the SAD manager, never in the HTTP layer: after a 429/503
// or a refused service token the request goes again with a new OTP of a later time step (a re-sent body
// would replay its code), a factor refusal is not re-sent, and the key's TOTP settings (digits, period,
// algorithm) shape the code. A tiny local HTTP server plays the provider and records what it got, and
// TOTP time runs on a test clock that the manager moves on instead of sleeping.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { generateSecret, generateSync } from 'otplib';
import pino from 'pino';
import { CscClient, CscError, OID, SadManager, type CredentialFacts, type KeyFactors } from '../../src/csc';
import { TestClock } from '../sandbox/sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

type Reply = { status?: number; headers?: Record<string, string>; body?: unknown };
interface Seen {
  path: string;
  at: number;
  bearer?: string;
  body: Record<string, unknown>;
}
let handlers: Record<string, (n: number) => Reply> = {};
const seen: Seen[] = [];
let server: http.Server;
let origin: string;
const clock = new TestClock();

before(async () => {
  server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += String(c)));
    req.on('end', () => {
      const path = req.url ?? '';
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // form bodies (the token endpoint) are not needed here
      }
      seen.push({ path, at: clock.now(), bearer: req.headers.authorization, body });
      const handler = handlers[path];
      const reply: Reply = handler ? handler(seen.filter((s) => s.path === path).length) : { status: 404 };
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
      res.end(JSON.stringify(reply.body ?? {}));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const AUTHORIZE = '/csc/v2/credentials/authorize';
const SECRET = generateSecret();

function provider(authorize: (n: number) => Reply, maxRetries = 3): CscClient {
  seen.length = 0;
  handlers = {
    '/csc/v2/info': () => ({ body: { specs: '2.0.0.2', authType: ['oauth2client'], methods: [] } }),
    '/oauth2/token': (n) => ({ body: { access_token: `tok-${n}`, token_type: 'Bearer', expires_in: 3600 } }),
    [AUTHORIZE]: authorize,
  };
  return new CscClient({
    baseUrl: `${origin}/csc/v2`,
    auth: { kind: 'client_credentials', clientId: 'c', clientSecret: 's' },
    timeoutMs: 1000,
    maxRetries,
    maxRetryDelayMs: 1000,
  });
}

const credential: CredentialFacts = {
  credentialId: 'cred-1',
  certificates: [],
  keyAlgorithm: 'rsa',
  signAlgoOid: OID.sha256WithRSAEncryption,
  multisign: 10,
  scal: 1,
  authMode: 'explicit',
  factors: ['PIN', 'OTP'],
  otpGenerator: 'totp',
  certificateSerialHex: '01',
};

function manager(client: CscClient, factors: Partial<KeyFactors> = {}): SadManager {
  return new SadManager({
    client,
    credential,
    factors: async () => ({ pin: '123456', totpSecret: SECRET, totpPeriod: 1, ...factors }),
    clock,
  });
}

const OK: Reply = { body: { SAD: 'sad-1', expiresIn: 3600 } };

function authorizeRequests(): Seen[] {
  return seen.filter((s) => s.path === AUTHORIZE);
}

function otpOf(s: Seen): string {
  const authData = s.body.authData as Array<{ id: string; value: string }>;
  return authData.find((a) => a.id === 'OTP')!.value;
}

/** The 1-second time step whose code `s` carried (searched around its arrival). */
function stepOf(s: Seen): number {
  const arrived = Math.floor(s.at / 1000);
  for (const step of [arrived, arrived - 1, arrived - 2]) {
    if (generateSync({ secret: SECRET, period: 1, epoch: step }) === otpOf(s)) return step;
  }
  return assert.fail(`the OTP sent at ${s.at} is no code of its time step`);
}

test(
  'a 429 on authorize is not re-sent as it was: the SAD manager re-sends with a later step code',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider((n) => (n === 1 ? { status: 429, headers: { 'retry-after': '0' } } : OK));
    const reservation = await manager(client).reserve([Buffer.alloc(32, 1)]);
    assert.equal(reservation.scal, 1);
    const sent = authorizeRequests();
    assert.equal(sent.length, 2);
    assert.equal(client.calls.authorize, 2);
    assert.notEqual(otpOf(sent[0]!), otpOf(sent[1]!));
    assert.ok(stepOf(sent[1]!) > stepOf(sent[0]!), 'the second code belongs to a later time step');
  },
);

test(
  'a 401 expired_token on authorize: a new token, and the request again with a later step code',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider((n) =>
      n === 1 ? { status: 401, body: { error: 'expired_token', error_description: 'Token expired' } } : OK,
    );
    await manager(client).reserve([Buffer.alloc(32, 1)]);
    const sent = authorizeRequests();
    assert.equal(sent.length, 2);
    assert.deepEqual(
      sent.map((s) => s.bearer),
      ['Bearer tok-1', 'Bearer tok-2'],
    );
    assert.equal(client.calls.token, 2);
    assert.ok(stepOf(sent[1]!) > stepOf(sent[0]!));
  },
);

test(
  'a PIN refusal sent as 401 is neither re-sent nor retried, and sticks',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider(() => ({
      status: 401,
      body: { error: 'invalid_pin', error_description: 'bad PIN' },
    }));
    const sadManager = manager(client);
    const err = await sadManager.reserve([Buffer.alloc(32, 1)]).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CscError);
    assert.equal(err.code, 'invalid_pin');
    await assert.rejects(
      sadManager.reserve([Buffer.alloc(32, 1)]),
      /refused earlier with HTTP 401 invalid_pin/,
    );
    assert.equal(client.calls.authorize, 1);
    assert.equal(client.calls.token, 1);
  },
);

test(
  '503 on every try: bounded re-sends, each with a new code, then a retryable error that does not stick',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    let down = true;
    const client = provider(
      () =>
        down
          ? { status: 503, headers: { 'retry-after': '0' }, body: { error: 'temporarily_unavailable' } }
          : OK,
      1,
    );
    const sadManager = manager(client);
    const err = await sadManager.reserve([Buffer.alloc(32, 1)]).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CscError);
    assert.equal(err.status, 503);
    assert.equal(err.retryable, true);
    const sent = authorizeRequests();
    assert.equal(sent.length, 2, 'the first try and maxRetries (1) re-send');
    assert.ok(stepOf(sent[1]!) > stepOf(sent[0]!));
    down = false;
    await sadManager.reserve([Buffer.alloc(32, 1)]);
    assert.equal(sadManager.authorisations, 1);
  },
);

test(
  'totpDigits, totpPeriod and totpAlgorithm shape the code that is sent',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider(() => OK);
    await manager(client, { totpDigits: 8, totpPeriod: 60, totpAlgorithm: 'SHA256' }).reserve([
      Buffer.alloc(32, 1),
    ]);
    const [sent] = authorizeRequests();
    const otp = otpOf(sent!);
    assert.match(otp, /^\d{8}$/);
    const at = Math.floor(sent!.at / 1000);
    const expected = [at, at - 60].map((epoch) =>
      generateSync({ secret: SECRET, digits: 8, period: 60, algorithm: 'sha256', epoch }),
    );
    assert.ok(expected.includes(otp), 'an 8-digit HMAC-SHA-256 code of a 60-second step');
    // The SHA-1 code of the same step differs: the algorithm really was used.
    assert.notEqual(otp, generateSync({ secret: SECRET, digits: 8, period: 60, epoch: at }));
  },
);

test('unusable TOTP settings are refused before any request', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = provider(() => OK);
  await assert.rejects(
    manager(client, { totpDigits: 5 }).reserve([Buffer.alloc(32, 1)]),
    /CSC credentials\/authorize failed: credential cred-1: totpDigits 5 is not 6, 7 or 8/,
  );
  await assert.rejects(
    manager(client, { totpAlgorithm: 'MD5' as 'SHA1' }).reserve([Buffer.alloc(32, 1)]),
    /totpAlgorithm "MD5" is not one of SHA1, SHA256, SHA512/,
  );
  await assert.rejects(manager(client, { totpPeriod: 0.5 }).reserve([Buffer.alloc(32, 1)]), /totpPeriod 0.5/);
  assert.equal(client.calls.authorize, 0);
});

/** The waits the manager took for the provider (429/503), read from its log: TOTP waits are apart. */
function busyLog(): { logger: pino.Logger; waits: () => number[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    }),
  );
  return {
    logger,
    waits: () =>
      lines.filter((l) => l.msg === 'CSC provider asked to slow down; waiting').map((l) => Number(l.waitMs)),
  };
}

test(
  '429 without Retry-After: exponential waits with equal jitter, bounded by maxRetries, no latch',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const [random, expected] of [
      [() => 0, [125, 250, 500]],
      [() => 0.999999, [250, 500, 1000]],
    ] as const) {
      let busy = true;
      const client = provider(() => (busy ? { status: 429, body: { error: 'too_many_requests' } } : OK), 3);
      const log = busyLog();
      const sadManager = new SadManager({
        client,
        credential,
        factors: async () => ({ pin: '123456', totpSecret: SECRET, totpPeriod: 1 }),
        clock,
        random,
        logger: log.logger,
      });
      const err = await sadManager.reserve([Buffer.alloc(32, 1)]).then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CscError);
      assert.equal(err.kind, 'throttled', 'the job is retried later');
      assert.equal(authorizeRequests().length, 4, 'the first try and three re-sends');
      // Each wait lies in [cap/2, cap] of a cap doubling from 250 ms; the random draw decides where.
      assert.deepEqual(log.waits(), expected);
      busy = false;
      await sadManager.reserve([Buffer.alloc(32, 1)]);
      assert.equal(sadManager.authorisations, 1, 'throttling latched nothing');
    }
  },
);

test(
  'Retry-After is honoured as a floor; one beyond maxRetryDelayMs gives up at once',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider((n) => (n === 1 ? { status: 503, headers: { 'retry-after': '2' } } : OK), 3);
    // maxRetryDelayMs is 1000 in provider(): a Retry-After of 2 s is beyond it.
    const log = busyLog();
    const sadManager = new SadManager({
      client,
      credential,
      factors: async () => ({ pin: '123456', totpSecret: SECRET, totpPeriod: 1 }),
      clock,
      logger: log.logger,
    });
    await assert.rejects(sadManager.reserve([Buffer.alloc(32, 1)]), (e: unknown) => {
      assert.ok(e instanceof CscError);
      assert.equal(e.status, 503);
      assert.equal(e.retryable, true);
      return true;
    });
    assert.equal(authorizeRequests().length, 1);
    assert.deepEqual(log.waits(), []);

    const patient = provider((n) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : OK), 3);
    const second = busyLog();
    await new SadManager({
      client: patient,
      credential,
      factors: async () => ({ pin: '123456', totpSecret: SECRET, totpPeriod: 1 }),
      clock,
      random: () => 0,
      logger: second.logger,
    }).reserve([Buffer.alloc(32, 1)]);
    assert.equal(authorizeRequests().length, 2);
    assert.deepEqual(second.waits(), [1000], 'Retry-After (1000 ms) rather than the jittered 125 ms');
  },
);

for (const [name, body] of [
  [
    'the sandbox wording',
    { error: 'invalid_otp', error_description: 'The OTP was already used (a code is accepted once)' },
  ],
  ['"OTP replayed"', { error: 'invalid_otp', error_description: 'OTP replayed' }],
  ['a code of its own', { error: 'otp_already_used', error_description: 'Rejected' }],
] as const) {
  test(
    `a replay refusal (${name}) is retried on the next step and latches nothing`,
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const client = provider((n) => (n === 1 ? { status: 400, body } : OK));
      const sadManager = manager(client);
      await sadManager.reserve([Buffer.alloc(32, 1)]);
      const sent = authorizeRequests();
      assert.equal(sent.length, 2);
      assert.ok(stepOf(sent[1]!) > stepOf(sent[0]!));
      assert.equal(sadManager.authorisations, 1);
    },
  );
}

test(
  'replays on every step: a transient error after two retries, and no latch',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    let replaying = true;
    const client = provider(() =>
      replaying
        ? { status: 400, body: { error: 'invalid_otp', error_description: 'The OTP has already been used' } }
        : OK,
    );
    const sadManager = manager(client);
    const err = await sadManager.reserve([Buffer.alloc(32, 1)]).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CscError);
    assert.equal(err.kind, 'transient', 'the job is retried, not failed');
    assert.match(err.message, /refused the OTP of several time steps as already used/);
    assert.equal(authorizeRequests().length, 3);
    replaying = false;
    await sadManager.reserve([Buffer.alloc(32, 1)]);
    assert.equal(authorizeRequests().length, 4, 'the provider is asked again: nothing was latched');
  },
);

test(
  'a bare invalid_otp twice is a wrong factor: latched after one retry on a fresh step',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = provider(() => ({ status: 400, body: { error: 'invalid_otp' } }));
    const sadManager = manager(client);
    await assert.rejects(
      sadManager.reserve([Buffer.alloc(32, 1)]),
      (e: unknown) => e instanceof CscError && e.code === 'invalid_otp',
    );
    assert.equal(authorizeRequests().length, 2);
    await assert.rejects(
      sadManager.reserve([Buffer.alloc(32, 1)]),
      /refused earlier with HTTP 400 invalid_otp/,
    );
    assert.equal(authorizeRequests().length, 2, 'not sent again');
  },
);

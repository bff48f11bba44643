// batchSize is a ceiling, never a reason to fail: against a provider that takes fewer hashes per
// signHash call (the sandbox's maxHashesPerCall), the first refused batch is signed in parts of the
// limit the provider stated, every later batch stays within it, and the mismatch is logged once at
// warn. Under SCAL1 with factors, each part is reserved from the SAD manager; under SCAL2 each part is
// authorised bound to its own hashes; under a tenant's approval (real Redis), the drawn approval is
// shared among the parts and never drawn twice.
//
// The file's sandbox runs on a ManualClock and its SAD managers share one guard per credential, as a
// worker's processes share the Redis guard: a new manager never sends a TOTP step an earlier one used.
// (With a guard each and a clock following real time, a manager authorising within the same second
// as the previous test's was refused "The OTP was already used" and retried: a fifth refusal that
// depended on how fast the machine ran, not on the batch signer.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { Writable } from 'node:stream';
import pino from 'pino';
import {
  BatchSigner,
  CscError,
  InMemoryAuthorisationGuard,
  SadManager,
  type ApprovalSource,
  type CscClient,
} from '../../src/csc';
import { ParkedApprovals } from '../../src/custody';
import { statedHashLimit } from '../../src/csc/batch-signer';
import { freshOtp, pinOf } from './approval-fixture';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';
import { ManualClock } from '../sandbox/sandbox-fixture';
import { testRedis } from '../helpers/test-redis';

/** Every test here runs in well under a second; the bound only stops a hang. */
const TIMEOUT = { timeout: 120_000 };

const EC = 'fuji-eseal-ec';
const EC_SCAL2 = 'fuji-eseal-ec-scal2';
const LIMIT = 16;
let dataDir: string;
let fx: Fixture;
/** The sandbox's request log (debug: path, status, CSC error code), to name every refused request. */
const sandboxLog = capture();
/** One authorisation guard per credential for every SAD manager of the file. */
const guards = new Map<string, InMemoryAuthorisationGuard>();
const guardOf = (credentialId: string) => {
  const guard = guards.get(credentialId) ?? new InMemoryAuthorisationGuard();
  guards.set(credentialId, guard);
  return guard;
};
before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir, {
    maxHashesPerCall: LIMIT,
    clock: new ManualClock(),
    logger: sandboxLog.logger,
  });
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

function messages(n: number): { msg: Buffer; hash: Buffer }[] {
  return Array.from({ length: n }, () => {
    const msg = crypto.randomBytes(40);
    return { msg, hash: crypto.createHash('sha256').update(msg).digest() };
  });
}

function capture(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, done) {
        raw.push(String(chunk));
        done();
      },
    }),
  );
  return { logger, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** The requests the sandbox refused since log line `from`, as `path error`. */
function refusedSince(from: number): string[] {
  return sandboxLog
    .lines()
    .slice(from)
    .filter((l) => l.msg === 'sandbox: request' && Number(l.status) >= 400)
    .map((l) => `${String(l.path)} ${String(l.error)}`);
}

async function signAll(batch: BatchSigner, client: CscClient, credentialId: string, n: number) {
  const credential = await client.credentialInfo(credentialId);
  const publicKey = new crypto.X509Certificate(credential.certificates[0]!).publicKey;
  const items = messages(n);
  const sigs = await Promise.all(items.map((it) => batch.sign(it.hash)));
  items.forEach((it, i) => assert.ok(crypto.verify('sha256', it.msg, publicKey, sigs[i]!), `signature ${i}`));
  return sigs;
}

test(
  'batchSize 50 against a provider limit of 16: every hash signed, the signHash calls counted, no failure',
  { timeout: 120_000 },
  async () => {
    const { logger, lines } = capture();
    const client = await fx.clientFor(EC);
    const credential = await client.credentialInfo(EC);
    const sadManager = new SadManager({
      client,
      credential,
      factors: fx.factorsFor(EC),
      clock: fx.clock,
      guard: guardOf(EC),
    });
    // One batch in flight, so the count of calls is exact.
    const batch = new BatchSigner({ client, credential, sadManager, batchSize: 50, maxInFlight: 1, logger });
    fx.sandbox.resetStats();
    await signAll(batch, client, EC, 120);
    const stats = fx.sandbox.stats();
    // The first batch of 50 is refused once and goes again as 16+16+16+2; the other 70 hashes leave in
    // batches of at most 16: 16+16+16+16+6.
    assert.equal(stats.signHash, 1 + 4 + 5);
    assert.equal(stats.errors, 1);
    assert.equal(stats.signatures, 120);
    assert.equal(stats.authorize, 1, 'the parts were reserved from the same SAD');
    assert.equal(client.calls.signHash, 10);
    assert.deepEqual(batch.stats(), { batches: 9, signatures: 120, authorisations: 1, failedBatches: 0 });

    const sizes = lines()
      .filter((l) => l.msg === 'CSC batch signed')
      .map((l) => l.size);
    assert.deepEqual(sizes, [16, 16, 16, 2, 16, 16, 16, 16, 6]);
    const warns = lines().filter((l) => l.level === 40);
    assert.equal(warns.length, 1, 'the limit is logged once at warn');
    assert.equal(warns[0]!.providerLimit, LIMIT);
    assert.equal(warns[0]!.batchSize, 50);
    assert.match(String(warns[0]!.msg), /lower than batchSize/);
    await batch.close();
  },
);

test(
  'with several batches in flight the limit holds too: nothing fails, nothing is signed twice',
  { timeout: 120_000 },
  async () => {
    const client = await fx.clientFor(EC);
    const credential = await client.credentialInfo(EC);
    const sadManager = new SadManager({
      client,
      credential,
      factors: fx.factorsFor(EC),
      clock: fx.clock,
      guard: guardOf(EC),
    });
    const batch = new BatchSigner({ client, credential, sadManager, batchSize: 50, maxInFlight: 4 });
    fx.sandbox.resetStats();
    const logFrom = sandboxLog.lines().length;
    await signAll(batch, client, EC, 200);
    const stats = fx.sandbox.stats();
    assert.equal(stats.signatures, 200);
    // The 200 hashes arrive at once: four batches of 50 fill the four slots before any answer, so each
    // is refused for its size (and nothing else is refused), then signed as 16+16+16+2 under the one SAD.
    assert.deepEqual(refusedSince(logFrom), Array(4).fill('/csc/v2/signatures/signHash invalid_request'));
    assert.equal(stats.errors, 4);
    assert.equal(stats.signHash, 4 + 4 * 4);
    assert.equal(stats.authorize, 1);
    assert.deepEqual(batch.stats(), { batches: 16, signatures: 200, authorisations: 1, failedBatches: 0 });
    await batch.close();
  },
);

test('under SCAL2 each part is authorised bound to its own hashes', { timeout: 120_000 }, async () => {
  const client = await fx.clientFor(EC_SCAL2);
  const credential = await client.credentialInfo(EC_SCAL2);
  assert.equal(credential.scal, 2);
  const sadManager = new SadManager({
    client,
    credential,
    factors: fx.factorsFor(EC_SCAL2),
    clock: fx.clock,
    guard: guardOf(EC_SCAL2),
  });
  const batch = new BatchSigner({ client, credential, sadManager, batchSize: 40, maxInFlight: 1 });
  fx.sandbox.resetStats();
  await signAll(batch, client, EC_SCAL2, 40);
  const stats = fx.sandbox.stats();
  // 40 bound and refused for size; then 16, 16 and 8, each with an authorisation of its own.
  assert.equal(stats.authorize, 1 + 3);
  assert.equal(stats.signHash, 1 + 3);
  assert.equal(stats.signatures, 40);
  assert.equal(batch.stats().failedBatches, 0);
  await batch.close();
});

/** An approval parked in real Redis, as the worker's signing context reads it. */
async function parkedSource(
  credentialId: string,
  n: number,
  bound?: Buffer[],
): Promise<{ source: ApprovalSource; parked: ParkedApprovals; tenant: string }> {
  const { redis, prefix } = await testRedis();
  const kek = crypto.randomBytes(32);
  const parked = new ParkedApprovals(redis, prefix);
  const tenant = fx.credential(credentialId).tenant;
  const client = await fx.clientFor(credentialId);
  await client.credentialInfo(credentialId);
  const { sad, expiresAt } = await client.authorize({
    credentialId,
    numSignatures: n,
    pin: await pinOf(fx, credentialId),
    otp: await freshOtp(fx, credentialId),
    hashes: bound,
  });
  await parked.park(
    {
      tenant,
      credentialId,
      kind: 'sad',
      value: sad,
      numSignatures: n,
      expiresAt,
      via: 'prompt',
      hashes: bound,
    },
    kek,
  );
  const source: ApprovalSource = {
    draw: (wanted, marginMs) => parked.draw(tenant, credentialId, wanted, kek, marginMs),
    drawBound: (hashes, marginMs) => parked.drawBound(tenant, credentialId, hashes, kek, marginMs),
    retire: async (fingerprint) => {
      await parked.retire(tenant, credentialId, fingerprint);
    },
  };
  return { source, parked, tenant };
}

test(
  'under a SCAL1 approval for exactly 40, a batch of 40 refused for size is signed in parts of the one draw',
  { timeout: 120_000 },
  async () => {
    const { source, parked, tenant } = await parkedSource(EC, 40);
    const client = await fx.clientFor(EC);
    const credential = await client.credentialInfo(EC);
    const sadManager = new SadManager({
      client,
      credential,
      factors: () => Promise.reject(new Error('no factors under approval')),
      approvals: source,
    });
    const batch = new BatchSigner({ client, credential, sadManager, batchSize: 40, maxInFlight: 1, tenant });
    fx.sandbox.resetStats();
    await signAll(batch, client, EC, 40);
    assert.equal(fx.sandbox.stats().signatures, 40);
    assert.equal(fx.sandbox.stats().authorize, 0);
    const status = await parked.status(tenant, EC);
    assert.equal(status?.drawn, 40, 'drawn once: drawing again per part would have needed 80');
    assert.equal(status?.remaining, 0);
    await batch.close();
  },
);

test(
  'under a SCAL2 approval bound to 40 hashes, the parts share the drawn hashes',
  { timeout: 120_000 },
  async () => {
    const items = messages(40);
    const hashes = items.map((i) => i.hash);
    const { source, parked, tenant } = await parkedSource(EC_SCAL2, 40, hashes);
    const client = await fx.clientFor(EC_SCAL2);
    const credential = await client.credentialInfo(EC_SCAL2);
    const sadManager = new SadManager({
      client,
      credential,
      factors: () => Promise.reject(new Error('no factors under approval')),
      approvals: source,
    });
    const batch = new BatchSigner({ client, credential, sadManager, batchSize: 40, maxInFlight: 1, tenant });
    fx.sandbox.resetStats();
    const publicKey = new crypto.X509Certificate(credential.certificates[0]!).publicKey;
    const sigs = await Promise.all(hashes.map((h) => batch.sign(h)));
    items.forEach((it, i) =>
      assert.ok(crypto.verify('sha256', it.msg, publicKey, sigs[i]!), `signature ${i}`),
    );
    assert.equal(fx.sandbox.stats().signatures, 40);
    assert.equal(fx.sandbox.stats().signHash, 1 + 3);
    assert.equal((await parked.status(tenant, EC_SCAL2))?.drawn, 40);
    await batch.close();
  },
);

test('statedHashLimit reads the limit from how providers word the refusal, and nothing else', TIMEOUT, () => {
  const refusal = (status: number, error: string, errorDescription: string) =>
    new CscError({ endpoint: 'signatures/signHash', status, error, errorDescription });
  const cases: Array<[CscError, number, number | undefined]> = [
    [
      refusal(
        400,
        'invalid_request',
        'Invalid parameter hashes: 128 hashes exceed the limit of 100 per call',
      ),
      128,
      100,
    ],
    [refusal(400, 'invalid_request', 'Too many hashes: maximum is 25'), 50, 25],
    [refusal(400, 'too_many_hashes', 'max 10 documents per request'), 50, 10],
    [refusal(400, 'invalid_request', 'Too many hashes in the request'), 50, 25],
    [refusal(413, 'invalid_request', 'Request body exceeds 1048576 bytes'), 50, 25],
    // The SAD's remaining count, a bad hash, a bad signAlgo: not about the call's size.
    [
      refusal(
        400,
        'invalid_request',
        'Invalid parameter hashes: 50 hashes exceed the 3 signatures left on the SAD',
      ),
      50,
      undefined,
    ],
    [refusal(400, 'invalid_request', 'Hash is not authorized by the SAD (hashes[3])'), 50, undefined],
    [refusal(400, 'invalid_request', 'Invalid parameter signAlgo'), 50, undefined],
    // One hash cannot be split; a throttle or outage is not a size refusal.
    [refusal(400, 'invalid_request', 'Too many hashes: maximum is 0'), 1, undefined],
    [refusal(429, 'too_many_requests', 'Too many requests, limit 100 per minute'), 50, undefined],
    [refusal(503, 'temporarily_unavailable', 'exceeded capacity'), 50, undefined],
  ];
  for (const [err, sent, expected] of cases) {
    assert.equal(statedHashLimit(err, sent), expected, `${err.message} (sent ${sent})`);
  }
});

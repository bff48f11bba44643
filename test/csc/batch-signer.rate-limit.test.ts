// A provider's rate limit (K signHash calls per second, the rest answered 429 with Retry-After) costs
// no invoice: every attempt of every call waits at the client's gate once any call was told to wait,
// a rate-limited 429 is re-sent apart from the retry budget (the provider did nothing with it), and
// every hash is signed in exactly ceil(n / N)
// accepted calls. The rate reached is printed (the benchmark measures it), never asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { BatchSigner, SadManager } from '../../src/csc';
import { parseFaultSpec } from '../../src/sandbox/fault-spec';
import { makeDataDir, startFixture } from './sandbox-fixture';

const T = { timeout: 180_000 };
const ID = 'fuji-eseal-ec';

test('the spec names a limit as requests per second, and nothing else', T, () => {
  assert.deepEqual(parseFaultSpec('signHash:limit:10/s').rules, [
    { endpoint: 'signatures/signHash', rate: 1, fault: 'limit', perSecond: 10 },
  ]);
  assert.throws(
    () => parseFaultSpec('signHash:limit:10'),
    /limit needs requests per second, e\.g\. signHash:limit:10\/s/,
  );
  assert.throws(() => parseFaultSpec('signHash:limit:0/s'), /perSecond must be >= 1/);
  assert.throws(() => parseFaultSpec('signHash:limit:5/s=0.5'), /a limit takes no rate and no max/);
});

async function signUnderLimit(
  t: { diagnostic: (m: string) => void },
  o: { perSecond: number; maxInFlight: number; batchSize: number; hashes: number },
): Promise<void> {
  const dataDir = await makeDataDir();
  const fx = await startFixture(dataDir, { faults: `signHash:limit:${o.perSecond}/s` });
  try {
    const client = await fx.clientFor(ID);
    const credential = await client.credentialInfo(ID);
    const sadManager = new SadManager({ client, credential, factors: fx.factorsFor(ID), clock: fx.clock });
    const signer = new BatchSigner({
      client,
      credential,
      sadManager,
      batchSize: o.batchSize,
      maxInFlight: o.maxInFlight,
      maxWaitMs: 5,
    });
    const hashes = Array.from({ length: o.hashes }, () => crypto.randomBytes(32));
    const started = performance.now();
    const settled = await Promise.allSettled(hashes.map((h) => signer.sign(h)));
    const seconds = (performance.now() - started) / 1000;
    await signer.close();

    const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    assert.equal(failed.length, 0, `no invoice failed for the limit (${String(failed[0]?.reason)})`);
    assert.equal(signer.stats().failedBatches, 0);
    const calls = o.hashes / o.batchSize;
    const stats = fx.sandbox.stats();
    assert.equal(stats.signHash, calls, 'every accepted call carried a full batch');
    assert.equal(stats.signatures, o.hashes);
    const refused = fx.sandbox.faults.state().injected['signatures/signHash']?.limit ?? 0;
    assert.ok(refused > 0, 'the limit was reached');
    t.diagnostic(
      `rate limit: ${calls} calls in ${seconds.toFixed(1)} s = ${(calls / seconds).toFixed(2)} calls/s against ${o.perSecond}/s allowed, ${o.maxInFlight} in flight, ${refused} refused with 429`,
    );
  } finally {
    await fx.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

test('under a limit of 3 signHash calls/s, 4 batches in flight sign all 240 hashes in 24 calls', T, (t) =>
  signUnderLimit(t, { perSecond: 3, maxInFlight: 4, batchSize: 10, hashes: 240 }),
);

test('under a limit of 1 call/s, 8 batches in flight wait their turn: all 60 hashes in 12 calls', T, (t) =>
  signUnderLimit(t, { perSecond: 1, maxInFlight: 8, batchSize: 5, hashes: 60 }),
);

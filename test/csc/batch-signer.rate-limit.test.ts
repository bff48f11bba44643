// A provider's rate limit (K signHash calls per second, the rest answered 429 with Retry-After) costs
// no invoice: every batch waits at the client's gate once any call was told to wait, so the batches in
// flight do not spend their re-sends on refusals, and every hash is signed in exactly ceil(n / N)
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

test(
  'under a limit of 3 signHash calls/s, 4 batches in flight sign all 240 hashes in 24 calls',
  T,
  async (t) => {
    const dataDir = await makeDataDir();
    const fx = await startFixture(dataDir, { faults: 'signHash:limit:3/s' });
    try {
      const client = await fx.clientFor(ID);
      const credential = await client.credentialInfo(ID);
      const sadManager = new SadManager({ client, credential, factors: fx.factorsFor(ID), clock: fx.clock });
      const signer = new BatchSigner({
        client,
        credential,
        sadManager,
        batchSize: 10,
        maxInFlight: 4,
        maxWaitMs: 5,
      });
      const hashes = Array.from({ length: 240 }, () => crypto.randomBytes(32));
      const started = performance.now();
      const sigs = await Promise.all(hashes.map((h) => signer.sign(h)));
      const seconds = (performance.now() - started) / 1000;
      await signer.close();

      assert.equal(sigs.length, 240);
      assert.equal(signer.stats().failedBatches, 0, 'no batch failed for the limit');
      const stats = fx.sandbox.stats();
      assert.equal(stats.signHash, 24, 'every accepted call carried a full batch');
      assert.equal(stats.signatures, 240);
      const refused = fx.sandbox.faults.state().injected['signatures/signHash']?.limit ?? 0;
      assert.ok(refused > 0, 'the limit was reached');
      t.diagnostic(
        `rate limit: 24 calls in ${seconds.toFixed(1)} s = ${(24 / seconds).toFixed(2)} calls/s against 3/s allowed, ${refused} refused with 429`,
      );
    } finally {
      await fx.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  },
);

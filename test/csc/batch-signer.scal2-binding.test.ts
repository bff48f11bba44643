// SCAL2 binding as a guarantee of the types, not only of the provider: a Scal2Reservation gives its SAD
// only for exactly the hashes it is bound to (as a multiset) and never shows it, and the batch signer
// refuses, before any signHash, a batch whose reservation is bound to other hashes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { inspect } from 'node:util';
import { BatchSigner, CscError, SadManager, Scal1Reservation, Scal2Reservation } from '../../src/csc';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const ID = 'fuji-eseal-ec-scal2';
let dataDir: string;
let fx: Fixture;
before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir);
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const h = (b: number) => Buffer.alloc(32, b);
const SAD = 'scal2-sad-that-must-stay-inside';

test(
  'a SCAL2 reservation yields its SAD for exactly its hashes, in any order, and never shows it',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const bound = [h(1), h(1), h(2)];
    const r = new Scal2Reservation(SAD, Date.now() + 60_000, bound);
    assert.equal(r.count, 3);
    assert.ok(r.covers([h(2), h(1), h(1)]));
    assert.equal(r.sadFor([h(1), h(2), h(1)], 'cred-2'), SAD);
    for (const other of [[h(1), h(2), h(2)], [h(1), h(2)], [h(1), h(1), h(2), h(3)], []]) {
      assert.equal(r.covers(other), false);
      assert.throws(
        () => r.sadFor(other, 'cred-2'),
        (e: unknown) =>
          e instanceof CscError &&
          e.endpoint === 'signatures/signHash' &&
          e.retryable === false &&
          /^CSC signatures\/signHash failed: credential cred-2: SCAL2 SAD is bound to 3 other hashes/.test(
            e.message,
          ),
      );
    }
    // The binding is to the values at reservation time, not to buffers the caller may reuse.
    bound[0]!.fill(9);
    assert.ok(r.covers([h(1), h(1), h(2)]));
    assert.ok(!JSON.stringify(r).includes(SAD));
    assert.ok(!inspect(r, { depth: 5, showHidden: true }).includes(SAD));
    // @ts-expect-error a SCAL2 reservation has no bare SAD to pass for other hashes
    assert.equal(r.sad, undefined);

    const one = new Scal1Reservation('scal1-sad', Date.now() + 60_000, 2);
    assert.equal(one.sadFor([h(1), h(2)], 'cred-1'), 'scal1-sad');
    assert.throws(() => one.sadFor([h(1)], 'cred-1'), /1 hashes sent under a reservation of 2 signatures/);
    assert.ok(!JSON.stringify(one).includes('scal1-sad'));
  },
);

test(
  'SCAL2 batches are each authorised for their own hashes, one TOTP step apart, and verify',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await fx.clientFor(ID);
    const credential = await client.credentialInfo(ID);
    const sadManager = new SadManager({ client, credential, factors: fx.factorsFor(ID), clock: fx.clock });
    const signer = new BatchSigner({ client, credential, sadManager, batchSize: 3, maxWaitMs: 5 });
    fx.sandbox.resetStats();
    const messages = Array.from({ length: 6 }, (_, i) => Buffer.from(`invoice ${i} ${crypto.randomUUID()}`));
    const sigs = await Promise.all(
      messages.map((m) => signer.sign(crypto.createHash('sha256').update(m).digest())),
    );
    const publicKey = new crypto.X509Certificate(credential.certificates[0]!).publicKey;
    messages.forEach((m, i) => assert.ok(crypto.verify('sha256', m, publicKey, sigs[i]!), `signature ${i}`));
    await signer.close();
    const stats = fx.sandbox.stats();
    assert.equal(stats.authorize, 2);
    assert.equal(stats.signHash, 2);
    assert.equal(stats.signatures, 6);
    assert.equal(stats.errors, 0, 'no code was replayed and no hash was unbound');
    assert.equal(sadManager.authorisations, 2);
  },
);

test(
  'a batch whose SCAL2 reservation is bound to other hashes fails before any signHash',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await fx.clientFor(ID);
    const credential = await client.credentialInfo(ID);
    const sadManager = new SadManager({ client, credential, factors: fx.factorsFor(ID), clock: fx.clock });
    // A faulty reserve() (the kind of slip the type is there to catch): a real SCAL2 SAD, other hashes.
    const reserve = sadManager.reserve.bind(sadManager);
    sadManager.reserve = (hashes) => reserve(hashes.map(() => crypto.randomBytes(32)));
    const signer = new BatchSigner({ client, credential, sadManager, batchSize: 2, maxWaitMs: 5 });
    fx.sandbox.resetStats();
    const results = await Promise.allSettled([signer.sign(h(7)), signer.sign(h(8))]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      const err = (r as PromiseRejectedResult).reason;
      assert.ok(err instanceof CscError);
      assert.equal(err.retryable, false);
      assert.match(
        err.message,
        /^CSC signatures\/signHash failed: credential fuji-eseal-ec-scal2, batch of 2: the SCAL2 reservation is bound to other hashes than the batch's; nothing sent$/,
      );
    }
    await signer.close();
    // (The previous test's manager may have used this TOTP step: then the provider saw one retry.)
    assert.equal(sadManager.authorisations, 1);
    assert.equal(fx.sandbox.stats().signHash, 0, 'nothing was sent to signHash');
    assert.equal(client.calls.signHash, 0);
  },
);

// Authorisations never idle the night: the next SAD is authorised ahead, on the next TOTP step, while the
// current one still has signatures; a batch larger than what a SAD has left spends it to the last
// signature and takes the rest from the next SAD, so nothing authorised is abandoned; and what is
// authorised follows the demand, so a night ends with no SAD authorised for nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { BatchSigner, SadManager, Scal1Reservation, type SadManagerOptions } from '../../src/csc';
import { ManualClock } from '../sandbox/sandbox-fixture';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';

const T = { timeout: 180_000 };
const ID = 'fuji-eseal-ec';
const hashes = (n: number) => Array.from({ length: n }, () => crypto.randomBytes(32));

async function withFixture(multisign: number, run: (fx: Fixture) => Promise<void>): Promise<void> {
  const dataDir = await makeDataDir();
  const fx = await startFixture(dataDir, { multisign: { [ID]: multisign }, clock: new ManualClock() });
  try {
    await run(fx);
  } finally {
    await fx.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

async function manager(fx: Fixture, o: Partial<SadManagerOptions>) {
  const client = await fx.clientFor(ID);
  const credential = await client.credentialInfo(ID);
  const asked: { numSignatures: number; signedBefore: number }[] = [];
  let signed = 0;
  const sadManager = new SadManager({
    client,
    credential,
    factors: fx.factorsFor(ID),
    clock: fx.clock,
    onAuthorised: (a) => asked.push({ numSignatures: a.numSignatures, signedBefore: signed }),
    ...o,
  });
  return {
    sadManager,
    client,
    credential,
    asked,
    countSigned: (n: number) => {
      signed += n;
    },
  };
}

test(
  'the next SAD is authorised ahead while the current one has signatures, and each is spent to the last',
  T,
  async () => {
    await withFixture(10, async (fx) => {
      let queued = 40;
      const m = await manager(fx, { demand: async () => queued, authoriseAhead: { margin: 4 } });
      const sign = async (batch: Buffer[]) => {
        const reservation = await m.sadManager.reserve(batch, [], { upTo: true });
        assert.ok(reservation instanceof Scal1Reservation);
        const part = batch.slice(0, reservation.count);
        await m.client.signHash({ credential: m.credential, reservation, hashes: part });
        m.countSigned(part.length);
        queued -= part.length;
        return { reservation, rest: batch.slice(reservation.count) };
      };

      const first = await sign(hashes(4));
      await m.sadManager.aheadSettled();
      assert.equal(m.asked.length, 1, 'the batch that authorised says nothing of the rate of use');
      assert.equal((await sign(hashes(4))).reservation.sad, first.reservation.sad);
      await m.sadManager.aheadSettled();
      assert.equal(m.asked.length, 2, 'a second SAD was authorised ahead');
      assert.ok(m.asked[1]!.signedBefore <= 8, 'before the first SAD was spent: it still has 2 (below)');

      const split = await sign(hashes(4));
      assert.equal(split.reservation.count, 2, 'the SAD with 2 left signs 2 of the batch of 4');
      assert.equal(split.reservation.sad, first.reservation.sad);
      const rest = await sign(split.rest);
      assert.notEqual(
        rest.reservation.sad,
        first.reservation.sad,
        'the other 2 go under the SAD authorised ahead',
      );
      assert.equal(rest.rest.length, 0);

      let left: Buffer[] = hashes(queued);
      while (left.length > 0) {
        const batch = left.slice(0, 4);
        left = left.slice(4);
        const { rest: notYet } = await sign(batch);
        if (notYet.length > 0) left = [...notYet, ...left];
        await m.sadManager.aheadSettled();
      }
      m.sadManager.releaseUnused();
      await m.sadManager.aheadSettled();

      const stats = fx.sandbox.stats();
      assert.equal(stats.signatures, 40);
      assert.equal(stats.errors, 0);
      assert.equal(m.sadManager.unusedSignatures(), 0, 'no signature authorised was left unused');
      assert.equal(
        m.asked.reduce((sum, a) => sum + a.numSignatures, 0),
        40,
        'exactly the night was authorised',
      );
      assert.equal(stats.authorize, m.asked.length);
    });
  },
);

test('without authoriseAhead nothing is authorised before it is needed (as before)', T, async () => {
  await withFixture(10, async (fx) => {
    const m = await manager(fx, { demand: async () => 1_000 });
    const batch = hashes(4);
    const reservation = await m.sadManager.reserve(batch, [], { upTo: true });
    await m.client.signHash({ credential: m.credential, reservation, hashes: batch });
    await m.sadManager.aheadSettled();
    assert.equal(m.asked.length, 1);
  });
});

test('a demand covered by the SAD in hand (plus the margin) authorises nothing ahead', T, async () => {
  await withFixture(10, async (fx) => {
    const m = await manager(fx, { demand: async () => 12, authoriseAhead: { margin: 2 } });
    await m.sadManager.reserve(hashes(4), [], { upTo: true });
    await m.sadManager.reserve(hashes(2), [], { upTo: true });
    await m.sadManager.aheadSettled();
    // 12 queued (the 6 in hand among them), 4 left on the SAD, margin 2: 12 - 4 - 2 = 6 more wanted.
    assert.deepEqual(
      m.asked.map((a) => a.numSignatures),
      [10, 6],
    );
    const m2 = await manager(fx, { demand: async () => 6, authoriseAhead: { margin: 6 } });
    await m2.sadManager.reserve(hashes(4), [], { upTo: true });
    await m2.sadManager.reserve(hashes(2), [], { upTo: true });
    await m2.sadManager.aheadSettled();
    // 6 queued, all 6 in hand (the margin) under a SAD of 6 sized by the demand: nothing more wanted.
    assert.deepEqual(
      m2.asked.map((a) => a.numSignatures),
      [6],
    );
  });
});

test('a margin given as a function is asked each time: the invoices signed so far', T, async () => {
  await withFixture(10, async (fx) => {
    let signed = 0;
    const m = await manager(fx, { demand: async () => 12, authoriseAhead: { margin: () => signed } });
    await m.sadManager.reserve(hashes(4), [], { upTo: true });
    signed = 4;
    await m.sadManager.reserve(hashes(2), [], { upTo: true });
    signed = 6;
    await m.sadManager.aheadSettled();
    // 12 queued (the 6 signed among them), 4 left on the SAD, margin 6 now: 12 - 4 - 6 = 2 more wanted.
    // The same night with the margin fixed at 2 wants 6 (above): the function is read, not the count.
    assert.deepEqual(
      m.asked.map((a) => a.numSignatures),
      [10, 2],
    );
  });
});

test('releaseUnused stops an authorisation ahead before it is sent, and counts what is left', T, async () => {
  await withFixture(10, async (fx) => {
    let reads = 0;
    const closing: { manager?: SadManager } = {};
    // The signer closes while the authorisation ahead reads the demand again (its second look).
    const demand = async () => {
      if (++reads === 3) closing.manager?.releaseUnused();
      return 1_000;
    };
    const m = await manager(fx, { demand, authoriseAhead: { margin: 0 } });
    closing.manager = m.sadManager;
    await m.sadManager.reserve(hashes(3), [], { upTo: true });
    await m.sadManager.reserve(hashes(2), [], { upTo: true });
    await m.sadManager.aheadSettled();
    assert.equal(reads, 3, 'sized once, looked at twice ahead, and closed meanwhile');
    assert.deepEqual(
      m.asked.map((a) => a.numSignatures),
      [10],
      'nothing was authorised after close',
    );
    assert.equal(fx.sandbox.stats().authorize, 1);
    assert.equal(m.sadManager.unusedSignatures(), 5);
  });
});

test(
  'a batch signer spends each SAD to its last signature: 20 hashes in batches of 8 take 2 SADs of 10',
  T,
  async () => {
    await withFixture(10, async (fx) => {
      const client = await fx.clientFor(ID);
      const credential = await client.credentialInfo(ID);
      const sadManager = new SadManager({ client, credential, factors: fx.factorsFor(ID), clock: fx.clock });
      const signer = new BatchSigner({ client, credential, sadManager, batchSize: 8, maxInFlight: 1 });
      const all = hashes(20);
      const sigs = await Promise.all(all.map((h) => signer.sign(h)));
      await signer.close();
      assert.equal(new Set(sigs.map((s) => s.toString('hex'))).size, 20, 'each caller has its own signature');
      const stats = fx.sandbox.stats();
      assert.equal(stats.authorize, 2, 'before, the third batch abandoned 2 on each SAD and took a third');
      assert.equal(stats.signatures, 20);
      assert.equal(stats.errors, 0);
      assert.equal(sadManager.unusedSignatures(), 0);
    });
  },
);

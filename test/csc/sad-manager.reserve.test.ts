// The SAD manager against the sandbox: one SCAL1 SAD serves signatures until its count runs out (never
// more than multisign, even with concurrent callers), a SAD near expiry is replaced rather than used,
// and the key factors are read only when authorising. The sandbox accepts each TOTP time step once
// (period 1 s here), so every re-authorisation below also proves no code was replayed. Every sandbox
// here runs on a ManualClock (SAD lifetimes and TOTP): time moves only when a manager waits for the
// next step or a test moves it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import {
  CscError,
  InMemoryAuthorisationGuard,
  SadManager,
  Scal1Reservation,
  type KeyFactors,
} from '../../src/csc';
import { ManualClock } from '../sandbox/sandbox-fixture';
import { makeDataDir, startFixture } from './sandbox-fixture';

/** Every test here runs in well under a second; the bound only stops a hang. */
const TIMEOUT = { timeout: 120_000 };

const ID = 'fuji-eseal-ec';
let dataDir: string;
before(async () => {
  dataDir = await makeDataDir();
});
after(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

const randomHash = () => crypto.randomBytes(32);

test(
  '12 concurrent signatures with multisign 5 take 3 authorisations, none over-drawn',
  TIMEOUT,
  async () => {
    const fx = await startFixture(dataDir, { multisign: { [ID]: 5 }, clock: new ManualClock() });
    try {
      const client = await fx.clientFor(ID);
      const credential = await client.credentialInfo(ID);
      assert.equal(credential.multisign, 5);
      const read = fx.factorsFor(ID);
      let factorReads = 0;
      const factors = async (): Promise<KeyFactors> => {
        factorReads++;
        return read();
      };
      // Asking for more than multisign is capped at multisign.
      const sadManager = new SadManager({
        client,
        credential,
        factors,
        maxSignaturesPerAuthorisation: 50,
        clock: fx.clock,
      });
      assert.equal(sadManager.maxPerAuthorisation, 5);

      const perSad = new Map<string, number>();
      await Promise.all(
        Array.from({ length: 12 }, async () => {
          const hash = randomHash();
          const reservation = await sadManager.reserve([hash]);
          assert.ok(reservation instanceof Scal1Reservation);
          perSad.set(reservation.sad, (perSad.get(reservation.sad) ?? 0) + 1);
          const [sig] = await client.signHash({ credential, reservation, hashes: [hash] });
          assert.ok(sig && sig.length > 0);
        }),
      );
      assert.equal(sadManager.authorisations, 3);
      assert.equal(factorReads, 3);
      assert.deepEqual([...perSad.values()].sort(), [2, 5, 5]);
      assert.equal(sadManager.unusedSignatures(), 3);
      const stats = fx.sandbox.stats();
      assert.equal(stats.authorize, 3);
      assert.equal(stats.signHash, 12);
      assert.equal(stats.signatures, 12);
      assert.equal(stats.errors, 0);
    } finally {
      await fx.close();
    }
  },
);

test(
  'a smaller maxSignaturesPerAuthorisation is honoured; a batch above it is refused locally',
  TIMEOUT,
  async () => {
    const fx = await startFixture(dataDir, { multisign: { [ID]: 5 }, clock: new ManualClock() });
    try {
      const client = await fx.clientFor(ID);
      const credential = await client.credentialInfo(ID);
      const sadManager = new SadManager({
        client,
        credential,
        factors: fx.factorsFor(ID),
        maxSignaturesPerAuthorisation: 2,
        clock: fx.clock,
      });
      for (let i = 0; i < 3; i++) {
        const hashes = [randomHash(), randomHash()];
        const reservation = await sadManager.reserve(hashes);
        await client.signHash({ credential, reservation, hashes });
      }
      assert.equal(sadManager.authorisations, 3);
      await assert.rejects(
        sadManager.reserve([randomHash(), randomHash(), randomHash()]),
        (err: unknown) =>
          err instanceof CscError &&
          /credential fuji-eseal-ec: a batch of 3 exceeds the 2 signatures one authorisation may cover/.test(
            err.message,
          ),
      );
      const stats = fx.sandbox.stats();
      assert.equal(stats.authorize, 3);
      assert.equal(stats.errors, 0);
    } finally {
      await fx.close();
    }
  },
);

test(
  'a SAD within the expiry margin is replaced, so no signature is asked for past expiry',
  TIMEOUT,
  async () => {
    // The sandbox's SAD lifetime and TOTP run on a ManualClock. The manager judges expiry by the real
    // clock (SadManagerOptions.clock is for TOTP and waits only), so the margin is tried at its two
    // ends instead of by waiting: far from expiry (margin 1 s of an hour) the SAD is reused; with a
    // margin of the SAD's whole life it is inside the margin from the start and replaced at the next
    // reservation. Neither depends on how fast the machine runs.
    const clock = new ManualClock();
    const fx = await startFixture(dataDir, { sadLifetimeSec: 3600, clock });
    try {
      const client = await fx.clientFor(ID);
      const credential = await client.credentialInfo(ID);
      // One guard, as a worker's managers of one credential share one: no TOTP step is sent twice.
      const guard = new InMemoryAuthorisationGuard();
      const manager = (expiryMarginMs: number) =>
        new SadManager({ client, credential, factors: fx.factorsFor(ID), expiryMarginMs, clock, guard });

      const far = manager(1000);
      const first = await far.reserve([randomHash()]);
      const again = await far.reserve([randomHash()]);
      assert.ok(first instanceof Scal1Reservation && again instanceof Scal1Reservation);
      assert.equal(again.sad, first.sad, 'a SAD far from expiry is reused');
      assert.equal(far.authorisations, 1);

      const near = manager(3_600_000);
      const issued = await near.reserve([randomHash()]);
      const hash = randomHash();
      const later = await near.reserve([hash]);
      assert.ok(issued instanceof Scal1Reservation && later instanceof Scal1Reservation);
      assert.notEqual(issued.sad, first.sad);
      assert.notEqual(later.sad, issued.sad, 'a SAD inside the margin is not handed out again');
      assert.equal(near.authorisations, 2);
      await client.signHash({ credential, reservation: later, hashes: [hash] });
      // The replaced SAD had not expired at the provider: the margin, not the provider, replaced it.
      await client.signHash({ credential, sad: issued.sad, hashes: [randomHash()] });
      assert.equal(fx.sandbox.stats().errors, 0);

      // The provider does enforce expiry: once its clock reaches the SAD's end, a SAD used anyway is refused.
      clock.advance(3600_000);
      await assert.rejects(
        client.signHash({ credential, sad: first.sad, hashes: [randomHash()] }),
        (err: unknown) => err instanceof CscError && err.status === 400 && /SAD expired/.test(err.message),
      );
    } finally {
      await fx.close();
    }
  },
);

test('an invalidated SAD is not handed out again', TIMEOUT, async () => {
  const fx = await startFixture(dataDir, { clock: new ManualClock() });
  try {
    const client = await fx.clientFor(ID);
    const credential = await client.credentialInfo(ID);
    const sadManager = new SadManager({ client, credential, factors: fx.factorsFor(ID), clock: fx.clock });
    const a = await sadManager.reserve([randomHash()]);
    sadManager.invalidate(a);
    assert.equal(sadManager.unusedSignatures(), 0);
    const b = await sadManager.reserve([randomHash()]);
    assert.ok(a instanceof Scal1Reservation && b instanceof Scal1Reservation);
    assert.notEqual(b.sad, a.sad);
    assert.equal(sadManager.authorisations, 2);
    assert.equal(fx.sandbox.stats().errors, 0);
  } finally {
    await fx.close();
  }
});

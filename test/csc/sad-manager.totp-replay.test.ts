// The SAD manager against a sandbox that accepts each TOTP time step once (RFC 6238 section 5.2,
// 1-second steps here): it never sends a code of a step it already used, waiting for the next step
// (and says so at debug level, without the code); a code another client used first is refused as a
// replay, which is retried on the next step and is no factor refusal; a code refused twice without
// saying it was used (a wrong TOTP secret) latches the credential.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { Writable } from 'node:stream';
import pino from 'pino';
import { generateSecret } from 'otplib';
import { CscError, SadManager, Scal2Reservation, totpCode } from '../../src/csc';
import { makeDataDir, startFixture, type Fixture } from './sandbox-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const SCAL2 = 'fuji-eseal-ec-scal2';
const SCAL1 = 'sakura-eseal-rsa';
/**
 * TOTP time for the sandbox and the managers alike, standing still unless a manager waits for the next
 * step: which step a request falls in never depends on how fast this machine is. It starts early in a
 * step two ahead of real time, a step no request has used.
 */
const clock = (() => {
  let t = (Math.floor(Date.now() / 1000) + 2) * 1000 + 100;
  return {
    now: (): number => t,
    sleep: async (ms: number): Promise<void> => {
      t += Math.max(0, ms);
    },
  };
})();
let dataDir: string;
let fx: Fixture;
before(async () => {
  dataDir = await makeDataDir();
  fx = await startFixture(dataDir, { totpNow: clock.now });
});
after(async () => {
  await fx.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const randomHash = () => crypto.randomBytes(32);

function capture(): { logger: pino.Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, done) {
        chunks.push(String(chunk));
        done();
      },
    }),
  );
  return {
    logger,
    lines: () => chunks.map((c) => JSON.parse(c) as Record<string, unknown>),
    text: () => chunks.join(''),
  };
}

/** Early in a 1-second step of the test clock, so that two requests surely fall in the same one. */
async function earlyInAStep(): Promise<void> {
  await clock.sleep(1000 - (clock.now() % 1000) + 100);
}

test(
  'SCAL2 batches in one TOTP step: the second authorisation waits for the next step, and both are accepted',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await fx.clientFor(SCAL2);
    const credential = await client.credentialInfo(SCAL2);
    const log = capture();
    const sadManager = new SadManager({
      client,
      credential,
      factors: fx.factorsFor(SCAL2),
      logger: log.logger,
      clock,
    });
    fx.sandbox.resetStats();
    await earlyInAStep();
    const started = clock.now();
    const a = await sadManager.reserve([randomHash()]);
    const b = await sadManager.reserve([randomHash(), randomHash()]);
    assert.ok(a instanceof Scal2Reservation && b instanceof Scal2Reservation);
    assert.ok(clock.now() - started >= 500, 'the second authorisation waited for the next step');
    assert.equal(sadManager.authorisations, 2);
    const stats = fx.sandbox.stats();
    assert.equal(stats.authorize, 2);
    assert.equal(stats.errors, 0, 'the provider never saw a replayed code');

    const waits = log.lines().filter((l) => /waiting for the next step/.test(String(l.msg)));
    assert.equal(waits.length, 1);
    assert.equal(waits[0]!.level, 20); // debug
    assert.equal(waits[0]!.credentialId, SCAL2);
    assert.equal(typeof waits[0]!.waitMs, 'number');
    // No TOTP code (of any step around now) and no factor is in the log.
    const f = await fx.factorsFor(SCAL2)();
    const now = clock.now();
    const codes = [-3, -2, -1, 0, 1].map((d) => totpCode(f.totpSecret!, { period: 1, now: now + d * 1000 }));
    for (const secret of [...codes, f.pin!, f.totpSecret!]) assert.ok(!log.text().includes(secret));
  },
);

test(
  'an OTP step another client used first is refused as a replay and retried on the next step',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await fx.clientFor(SCAL1);
    const credential = await client.credentialInfo(SCAL1);
    const log = capture();
    // Two managers of one credential know nothing of each other, like two worker processes.
    const first = new SadManager({ client, credential, factors: fx.factorsFor(SCAL1), clock });
    const second = new SadManager({
      client,
      credential,
      factors: fx.factorsFor(SCAL1),
      logger: log.logger,
      clock,
    });
    fx.sandbox.resetStats();
    await earlyInAStep();
    await first.reserve([randomHash()]);
    const reservation = await second.reserve([randomHash()]);
    const hash = randomHash();
    await client.signHash({ credential, reservation: await second.reserve([hash]), hashes: [hash] });
    assert.equal(reservation.scal, 1);
    const stats = fx.sandbox.stats();
    assert.equal(stats.authorize, 3, 'first, second refused as a replay, second again on the next step');
    assert.equal(stats.errors, 1);
    assert.equal(second.authorisations, 1);
    const retried = log
      .lines()
      .filter((l) => /already used; retrying on the next time step/.test(String(l.msg)));
    assert.equal(retried.length, 1);
    assert.equal(retried[0]!.error, 'invalid_otp');
  },
);

test(
  'an OTP refused twice (a wrong TOTP secret) latches the credential',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const client = await fx.clientFor(SCAL1);
    const credential = await client.credentialInfo(SCAL1);
    const good = await fx.factorsFor(SCAL1)();
    const sadManager = new SadManager({
      client,
      credential,
      factors: async () => ({ ...good, totpSecret: generateSecret() }),
      clock,
    });
    fx.sandbox.resetStats();
    const first = await sadManager.reserve([randomHash()]).then(
      () => assert.fail('a wrong TOTP secret must be refused'),
      (e: unknown) => e,
    );
    assert.ok(first instanceof CscError);
    assert.equal(first.error, 'invalid_otp');
    assert.equal(fx.sandbox.stats().authorize, 2, 'one retry on a fresh step');
    await assert.rejects(sadManager.reserve([randomHash()]), (e: unknown) => {
      assert.ok(e instanceof CscError);
      assert.match(
        e.message,
        /refused earlier with HTTP 400 invalid_otp: The OTP is invalid \(at [0-9T:.Z-]+\); not sending the factors again/,
      );
      return true;
    });
    assert.equal(fx.sandbox.stats().authorize, 2);
    assert.equal(sadManager.authorisations, 0);
  },
);

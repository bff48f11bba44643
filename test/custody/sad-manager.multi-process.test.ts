// Six worker processes on one TOTP credential of the real sandbox (1-second TOTP steps): each SAD
// manager has its own CSC client and its own Redis connection, and they share only Redis, as separate
// processes do. With the Redis guard no code is ever replayed, nothing is latched, the sandbox counts no
// failed authentication, and the authorisations are exactly those needed. The same six without it (each
// alone, as before) make the sandbox refuse replays: the check can fail.
//
// TOTP time is a clock that moves only when a manager waits for the next step, so every manager is in the
// same step until one waits: the worst case, on every run, without wall-clock windows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { SadManager, totpTimeStep, type SadReservation } from '../../src/csc';
import { RedisAuthorisationGuard, readLatch, type CredentialRef } from '../../src/custody';
import { makeDataDir, startFixture, type Fixture } from '../csc/sandbox-fixture';
import { testRedis } from '../helpers/test-redis';
import { capture, ownConnection, StepClock, type Captured } from './custody-fixture';

const T = { timeout: 180_000 };
const SCAL2 = 'fuji-eseal-ec-scal2';
const SCAL1 = 'sakura-eseal-rsa';
const PROCESSES = 6;
let dataDir: string;
before(async () => {
  dataDir = await makeDataDir();
});
after(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

const randomHash = () => crypto.randomBytes(32);

interface Night {
  fx: Fixture;
  clock: StepClock;
  sandboxLog: Captured;
  close(): Promise<void>;
}

async function night(multisign?: Record<string, number>): Promise<Night> {
  const clock = new StepClock();
  const sandboxLog = capture('info');
  const fx = await startFixture(dataDir, { totpNow: clock.now, logger: sandboxLog.logger, multisign });
  return { fx, clock, sandboxLog, close: () => fx.close() };
}

/** Failed authentications the sandbox counted towards its lockout (it logs each one). */
function failedAuthentications(n: Night): Record<string, unknown>[] {
  return n.sandboxLog.lines().filter((l) => l.msg === 'sandbox: credential authorisation failed');
}

interface Worker {
  manager: SadManager;
  log: Captured;
}

async function workers(
  n: Night,
  credentialId: string,
  guardOf?: (ref: CredentialRef) => RedisAuthorisationGuard,
): Promise<Worker[]> {
  const tenant = n.fx.credential(credentialId).tenant;
  return Promise.all(
    Array.from({ length: PROCESSES }, async () => {
      const client = await n.fx.clientFor(credentialId);
      const credential = await client.credentialInfo(credentialId);
      const log = capture();
      const manager = new SadManager({
        client,
        credential,
        factors: n.fx.factorsFor(credentialId),
        guard: guardOf?.({ providerUrl: n.fx.sandbox.url, tenant, credentialId }),
        clock: n.clock,
        logger: log.logger,
      });
      return { manager, log };
    }),
  );
}

function assertNoReplayOrRefusal(ws: Worker[]): void {
  for (const { log } of ws) {
    // Warnings are where refusals, replays and retries show (a wait for the next step is debug).
    const warnings = log.lines().filter((l) => Number(l.level) >= 40);
    assert.deepEqual(warnings, [], 'no manager met a refusal');
  }
}

test(
  'SCAL2: six processes authorising four times each: 24 authorisations, no replay, no failure, no latch',
  T,
  async () => {
    const { url, prefix, redis } = await testRedis();
    const n = await night();
    try {
      const guardOf = (ref: CredentialRef) =>
        new RedisAuthorisationGuard({ redis: ownConnection(url), prefix, credential: ref, pollMs: 10 });
      const ws = await workers(n, SCAL2, guardOf);
      n.fx.sandbox.resetStats();
      const startedAt = n.clock.now();
      const got: SadReservation[] = [];
      await Promise.all(
        ws.map(async ({ manager }) => {
          for (let i = 0; i < 4; i++) got.push(await manager.reserve([randomHash(), randomHash()]));
        }),
      );
      assert.equal(got.length, 24);
      assert.ok(got.every((r) => r.scal === 2 && r.count === 2));
      const stats = n.fx.sandbox.stats();
      assert.equal(stats.authorize, 24, 'one authorize call per authorisation: nothing was re-sent');
      assert.equal(stats.errors, 0, 'the provider refused nothing');
      assert.deepEqual(failedAuthentications(n), [], 'the lockout counter never moved');
      assert.equal(
        ws.reduce((sum, w) => sum + w.manager.authorisations, 0),
        24,
      );
      assertNoReplayOrRefusal(ws);
      // 24 codes of 24 consecutive steps: the TOTP clock moved on 23 steps, none reused or skipped.
      assert.equal(totpTimeStep(n.clock.now(), 1) - totpTimeStep(startedAt, 1), 23);
      const ref = { providerUrl: n.fx.sandbox.url, tenant: 'fuji', credentialId: SCAL2 };
      assert.equal(await readLatch(redis, prefix, ref), undefined, 'not latched');
    } finally {
      await n.close();
    }
  },
);

test(
  'SCAL1: six processes, ten concurrent batches each, multisign 3: four authorisations per process, none refused',
  T,
  async () => {
    const { url, prefix } = await testRedis();
    const n = await night({ [SCAL1]: 3 });
    try {
      const guardOf = (ref: CredentialRef) =>
        new RedisAuthorisationGuard({ redis: ownConnection(url), prefix, credential: ref, pollMs: 10 });
      const ws = await workers(n, SCAL1, guardOf);
      n.fx.sandbox.resetStats();
      await Promise.all(
        ws.map(({ manager }) =>
          Promise.all(Array.from({ length: 10 }, () => manager.reserve([randomHash()]))),
        ),
      );
      assert.deepEqual(
        ws.map((w) => w.manager.authorisations),
        [4, 4, 4, 4, 4, 4],
      );
      const stats = n.fx.sandbox.stats();
      assert.equal(stats.authorize, 24);
      assert.equal(stats.errors, 0);
      assert.deepEqual(failedAuthentications(n), []);
      assertNoReplayOrRefusal(ws);
    } finally {
      await n.close();
    }
  },
);

test(
  'without the shared guard, the same six processes replay codes and the sandbox counts failures',
  T,
  async () => {
    const n = await night();
    try {
      const ws = await workers(n, SCAL2);
      n.fx.sandbox.resetStats();
      await Promise.allSettled(ws.map(({ manager }) => manager.reserve([randomHash()])));
      const failed = failedAuthentications(n);
      assert.ok(failed.length >= 1, 'replays reached the provider');
      assert.ok(failed.some((l) => l.failed === 'OTP replayed'));
    } finally {
      await n.close();
    }
  },
);

test(
  'SCAL1 sized by a shared demand: two processes starting together authorise it once between them, not once each',
  T,
  async () => {
    const { url, prefix } = await testRedis();
    const n = await night({ [SCAL1]: 1000 });
    try {
      const tenant = n.fx.credential(SCAL1).tenant;
      const asked: number[] = [];
      const processes = await Promise.all(
        [60, 60].map(async (cap) => {
          const client = await n.fx.clientFor(SCAL1);
          return new SadManager({
            client,
            credential: await client.credentialInfo(SCAL1),
            factors: n.fx.factorsFor(SCAL1),
            guard: new RedisAuthorisationGuard({
              redis: ownConnection(url),
              prefix,
              credential: { providerUrl: n.fx.sandbox.url, tenant, credentialId: SCAL1 },
              pollMs: 10,
            }),
            clock: n.clock,
            logger: capture().logger,
            // Both read the same queue: every process sees the whole night's demand.
            demand: async () => demand,
            maxSignaturesPerAuthorisation: cap,
            onAuthorised: (a) => asked.push(a.numSignatures),
          });
        }),
      );
      const batch = () => Array.from({ length: 4 }, randomHash);

      // 40 queued: the first to hold the lease authorises them all; the other then finds them held
      // and takes an equal share, not all 40 again (nor its batch alone: one authorisation per TOTP
      // step would idle its invoices in hand).
      let demand = 40;
      const [a, b] = await Promise.all(processes.map((m) => m.reserve(batch())));
      assert.equal(a!.count + b!.count, 8);
      assert.deepEqual(asked, [40, 20], 'not 40 each');

      // Their SADs dropped and 200 queued, above one authorisation's cap (60): each asks for its cap,
      // as the rest is more than both caps.
      asked.length = 0;
      demand = 200;
      for (const r of [a!, b!]) for (const m of processes) m.invalidate(r);
      await Promise.all(processes.map((m) => m.reserve(batch())));
      assert.deepEqual(asked, [60, 60]);
    } finally {
      await n.close();
    }
  },
);

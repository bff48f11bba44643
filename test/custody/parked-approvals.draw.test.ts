// Approvals parked in real Redis: drawn down atomically by many clients at once, never past their count
// or expiry, readable only with the key they were sealed under and only for their own tenant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ApprovalNeededError } from '../../src/csc';
import { ParkedApprovals, secretFingerprint } from '../../src/custody';
import { connectRedis } from '../../src/common/redis';
import { dumpPrefix, testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const kek = crypto.randomBytes(32);

test(
  'concurrent draws from several connections take exactly the approved count',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { url, redis, prefix } = await testRedis();
    const parked = new ParkedApprovals(redis, prefix);
    const sad = `SAD-${crypto.randomBytes(16).toString('hex')}`;
    await parked.park(
      {
        tenant: 'sakura',
        credentialId: 'cred-1',
        kind: 'sad',
        value: sad,
        numSignatures: 100,
        expiresAt: Date.now() + 600_000,
        via: 'prompt',
      },
      kek,
    );
    const clients = Array.from({ length: 4 }, () => connectRedis(url));
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          new ParkedApprovals(clients[i % 4]!, prefix).draw('sakura', 'cred-1', 3, kek),
        ),
      );
      const drawn = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      assert.equal(
        drawn.reduce((n, d) => n + d.count, 0),
        100,
      );
      // 33 draws of 3 and one of the last 1; the rest are told to wait for an approval
      assert.equal(drawn.length, 34);
      assert.deepEqual(drawn.map((d) => d.count).sort(), [1, ...Array(33).fill(3)].sort());
      assert.ok(drawn.every((d) => d.value === sad && d.fingerprint === secretFingerprint(sad)));
      assert.equal(refused.length, 26);
      for (const e of refused) {
        assert.ok(e instanceof ApprovalNeededError);
        assert.equal(e.reason, 'spent');
        assert.match(e.message, /tenant sakura, credential cred-1: awaiting approval/);
      }
      const status = await parked.status('sakura', 'cred-1');
      assert.equal(status?.remaining, 0);
      assert.equal(status?.drawn, 100);
      // The SAD is stored encrypted only.
      assert.ok(!(await dumpPrefix(redis, prefix)).includes(sad));
    } finally {
      for (const c of clients) c.disconnect();
    }
  },
);

test(
  'no approval, an expired one and one within the margin are all "awaiting approval"',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { redis, prefix } = await testRedis();
    const parked = new ParkedApprovals(redis, prefix);
    await assert.rejects(parked.draw('fuji', 'c', 1, kek), (e: unknown) => {
      return e instanceof ApprovalNeededError && e.reason === 'none';
    });
    const base = { tenant: 'fuji', credentialId: 'c', kind: 'sad' as const, value: 'v', via: 'prompt' };
    await parked.park({ ...base, numSignatures: 5, expiresAt: Date.now() - 1 }, kek);
    await assert.rejects(parked.draw('fuji', 'c', 1, kek), /expired/);
    await parked.park({ ...base, numSignatures: 5, expiresAt: Date.now() + 30_000 }, kek);
    await assert.rejects(parked.draw('fuji', 'c', 1, kek, 60_000), /expired/);
    const ok = await parked.draw('fuji', 'c', 9, kek, 10_000);
    assert.equal(ok.count, 5);
  },
);

test(
  'a new approval replaces the old and reports what the old left unused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { redis, prefix } = await testRedis();
    const parked = new ParkedApprovals(redis, prefix);
    const base = { tenant: 'fuji', credentialId: 'c', kind: 'sad' as const, via: 'prompt' };
    await parked.park({ ...base, value: 'one', numSignatures: 10, expiresAt: Date.now() + 60_000 }, kek);
    await parked.draw('fuji', 'c', 4, kek);
    const r = await parked.park(
      { ...base, value: 'two', numSignatures: 7, expiresAt: Date.now() + 60_000 },
      kek,
    );
    assert.equal(r.replacedUnused, 6);
    const d = await parked.draw('fuji', 'c', 10, kek);
    assert.equal(d.value, 'two');
    assert.equal(d.count, 7);
    assert.deepEqual(
      (await parked.list()).map((s) => [s.tenant, s.credentialId, s.remaining, s.granted]),
      [['fuji', 'c', 0, 7]],
    );
  },
);

test(
  'a parked value moved to another tenant, or read with another key, does not decrypt',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { redis, prefix } = await testRedis();
    const parked = new ParkedApprovals(redis, prefix);
    const base = { kind: 'sad' as const, value: 'secret-sad', via: 'prompt', numSignatures: 5 };
    await parked.park({ ...base, tenant: 'fuji', credentialId: 'c', expiresAt: Date.now() + 60_000 }, kek);
    await assert.rejects(parked.draw('fuji', 'c', 1, crypto.randomBytes(32)), /encrypted under key/);
    // An operator copies fuji's record over sakura's: the tenant-bound encryption refuses it.
    const fields = await redis.hgetall(`${prefix}:approval:fuji:c`);
    await redis.hset(`${prefix}:approval:sakura:c`, fields);
    await assert.rejects(
      parked.draw('sakura', 'c', 1, kek),
      (e: Error) => /does not decrypt/.test(e.message) && !e.message.includes('secret-sad'),
    );
  },
);

test(
  'unavailable says why nothing could be drawn, without drawing',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { redis, prefix } = await testRedis();
    const parked = new ParkedApprovals(redis, prefix);
    assert.equal(await parked.unavailable('fuji', 'c', 0), 'none');
    const bound = crypto.randomBytes(32);
    const base = { tenant: 'fuji', credentialId: 'c', kind: 'sad' as const, value: 'v', via: 'prompt' };
    await parked.park({ ...base, numSignatures: 1, expiresAt: Date.now() + 30_000, hashes: [bound] }, kek);
    assert.equal(await parked.unavailable('fuji', 'c', 60_000), 'expired');
    assert.equal(await parked.unavailable('fuji', 'c', 0, crypto.randomBytes(32)), 'unbound');
    assert.equal(await parked.unavailable('fuji', 'c', 0, bound), undefined);
    assert.equal((await parked.status('fuji', 'c'))?.remaining, 1, 'looking drew nothing');
    await parked.drawBound('fuji', 'c', [bound], kek);
    assert.equal(await parked.unavailable('fuji', 'c', 0), 'spent');
  },
);

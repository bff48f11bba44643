// Group commit: appends that arrive while a lock cycle is in progress share the next one (one write, one
// fsync, one HEAD update), and each caller still gets its own entry with the right seq, prev and hash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { AuditError, AuditLog, verifyTenantAudit, type AuditEntryInput } from '../../src/outbox';
import { FileLock } from '../../src/outbox/audit-lock';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

function seal(n: number): AuditEntryInput {
  return {
    type: 'seal',
    invoice: `INV-${n}`,
    credentialId: 'fuji-eseal-ec',
    sourceSha256: sha256(`source ${n}`),
    sealedSha256: sha256(`sealed ${n}`),
    certificateSerial: '0a1b2c',
    file: `2026-11-24/INV-${n}.pdf`,
  };
}

async function lines(file: string): Promise<string[]> {
  return (await fs.readFile(file, 'utf8')).split('\n').slice(0, -1);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

test(
  '300 concurrent appends take a few lock cycles, in call order, each caller with its own entry',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-11-24T17:00:00.000Z') });
    const locksBefore = FileLock.acquisitions;
    const records = await Promise.all(range(300).map((n) => log.append(seal(n))));
    const locks = FileLock.acquisitions - locksBefore;

    assert.deepEqual(
      records.map((r) => r.seq),
      range(300),
    );
    assert.deepEqual(
      records.map((r) => (r as { invoice?: string }).invoice),
      range(300).map((n) => `INV-${n}`),
    );
    assert.ok(locks <= 5, `${locks} lock cycles for 300 appends`);
    const file = path.join(root, 'fuji', 'audit', '2026-11.jsonl');
    const written = await lines(file);
    assert.equal(written.length, 300);
    records.forEach((r, i) => assert.deepEqual(JSON.parse(written[i]!), r, `entry ${i + 1} as written`));
    assert.equal(records[150]!.prev, sha256(written[149]!));
    const head = JSON.parse(await fs.readFile(path.join(root, 'fuji', 'audit', 'HEAD'), 'utf8'));
    assert.deepEqual(head, {
      seq: 300,
      hash: records[299]!.hash,
      lineSha256: sha256(written[299]!),
      file: '2026-11.jsonl',
    });
    const result = await verifyTenantAudit(root, 'fuji');
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.entries, 300);
  },
);

test(
  'appends that arrive while a group is written share the next lock cycle',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji');
    const other = AuditLog.forTenant(root, 'fuji'); // another handle with the same settings
    const locksBefore = FileLock.acquisitions;
    const first = log.append(seal(0)); // starts a cycle at once
    await new Promise((resolve) => setImmediate(resolve));
    const rest = range(100).map((n) => (n % 2 ? log : other).append(seal(n)));
    const records = await Promise.all([first, ...rest]);
    assert.deepEqual(
      records.map((r) => r.seq),
      range(101),
    );
    assert.ok(FileLock.acquisitions - locksBefore <= 4, `${FileLock.acquisitions - locksBefore} lock cycles`);
    assert.equal((await verifyTenantAudit(root, 'fuji')).ok, true);
  },
);

test('a group holds at most 500 entries', { timeout: TEST_TIMEOUT_MS }, async () => {
  const root = await tempDir();
  const log = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-11-24T17:00:00.000Z') });
  const locksBefore = FileLock.acquisitions;
  const records = await Promise.all(range(1200).map((n) => log.append(seal(n))));
  assert.equal(FileLock.acquisitions - locksBefore, 3, 'groups of 500, 500 and 200');
  assert.deepEqual(
    records.map((r) => r.seq),
    range(1200),
  );
  const result = await verifyTenantAudit(root, 'fuji');
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(result.entries, 1200);
});

test(
  'a group that reaches a new month ends there, and the rest goes into the new month file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    let calls = 0;
    const clock = () =>
      ++calls <= 5 ? new Date('2026-10-31T23:59:59.000Z') : new Date('2026-11-01T00:00:00.000Z');
    const log = AuditLog.forTenant(root, 'fuji', { now: clock });
    const locksBefore = FileLock.acquisitions;
    const records = await Promise.all(range(10).map((n) => log.append(seal(n))));
    assert.equal(FileLock.acquisitions - locksBefore, 2);
    assert.deepEqual(
      records.map((r) => r.seq),
      range(10),
    );
    const dir = path.join(root, 'fuji', 'audit');
    const october = await lines(path.join(dir, '2026-10.jsonl'));
    const november = await lines(path.join(dir, '2026-11.jsonl'));
    assert.deepEqual([october.length, november.length], [5, 5]);
    for (const line of october) assert.match(line, /"time":"2026-10-/);
    for (const line of november) assert.match(line, /"time":"2026-11-/);
    assert.equal(records[5]!.prev, sha256(october[4]!), 'November starts from the last line of October');
    const result = await verifyTenantAudit(root, 'fuji');
    assert.equal(result.ok, true, JSON.stringify(result));
  },
);

test(
  'handles with different clocks do not share a group: each entry has its own handle’s time',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const a = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-11-24T17:00:00.000Z') });
    const b = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-11-25T17:00:00.000Z') });
    const records = await Promise.all(range(20).map((n) => (n % 2 ? a : b).append(seal(n))));
    assert.deepEqual(
      records.map((r) => r.seq),
      range(20),
    );
    records.forEach((r, i) =>
      assert.equal(r.time, (i + 1) % 2 ? '2026-11-24T17:00:00.000Z' : '2026-11-25T17:00:00.000Z'),
    );
    assert.equal((await verifyTenantAudit(root, 'fuji')).ok, true);
  },
);

test(
  'a bad entry among concurrent appends is refused on its own and takes no seq',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji');
    const results = await Promise.allSettled(
      range(30).map((n) =>
        log.append(n === 10 ? ({ type: 'nonsense' } as unknown as AuditEntryInput) : seal(n)),
      ),
    );
    const refused = results.filter((r) => r.status === 'rejected');
    assert.equal(refused.length, 1);
    assert.ok((refused[0] as PromiseRejectedResult).reason instanceof AuditError);
    assert.deepEqual(
      results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.seq] : [])),
      range(29),
    );
    assert.equal((await verifyTenantAudit(root, 'fuji')).entries, 29);
  },
);

test(
  'appendMany writes entries in order, and nothing if one of them is bad',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji');
    await assert.rejects(
      log.appendMany([seal(1), { type: 'nonsense' } as unknown as AuditEntryInput]),
      AuditError,
    );
    const locksBefore = FileLock.acquisitions;
    const records = await log.appendMany(range(50).map(seal));
    assert.equal(FileLock.acquisitions - locksBefore, 1);
    assert.deepEqual(
      records.map((r) => [r.seq, (r as { invoice?: string }).invoice]),
      range(50).map((n) => [n, `INV-${n}`]),
    );
    assert.deepEqual(await log.appendMany([]), []);
    assert.equal((await verifyTenantAudit(root, 'fuji')).entries, 50);
  },
);

test(
  'a group written without its HEAD update (a crash) is kept, and the chain continues after it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-11-24T17:00:00.000Z') });
    const dir = path.join(root, 'fuji', 'audit');
    const file = path.join(dir, '2026-11.jsonl');
    await log.append(seal(1));
    await log.append(seal(2));
    const headBefore = await fs.readFile(path.join(dir, 'HEAD'), 'utf8');
    await Promise.all(range(5).map((n) => log.append(seal(2 + n))));
    // The process died after syncing the group's lines and before replacing HEAD; then also halfway
    // through the write of a later group.
    await fs.writeFile(path.join(dir, 'HEAD'), headBefore);
    await fs.appendFile(file, '{"seq":8,"time":"2026-11-24T17:00:00.000Z","ten');
    assert.equal((await verifyTenantAudit(root, 'fuji')).ok, false);

    const records = await Promise.all(range(3).map((n) => log.append(seal(7 + n))));
    assert.deepEqual(
      records.map((r) => r.seq),
      [8, 9, 10],
    );
    assert.equal((await lines(file)).length, 10);
    const result = await verifyTenantAudit(root, 'fuji');
    assert.equal(result.ok, true, JSON.stringify(result));
  },
);

test(
  'lines after HEAD that do not continue it are not taken as a lost HEAD update',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-11-24T17:00:00.000Z') });
    const dir = path.join(root, 'fuji', 'audit');
    const file = path.join(dir, '2026-11.jsonl');
    await log.append(seal(1));
    const headBefore = await fs.readFile(path.join(dir, 'HEAD'), 'utf8');
    await Promise.all(range(4).map((n) => log.append(seal(1 + n))));
    // HEAD is put back and the second line is edited: lines 2..5 no longer chain from HEAD's line.
    await fs.writeFile(path.join(dir, 'HEAD'), headBefore);
    const written = await lines(file);
    written[1] = written[1]!.replace('INV-2', 'INV-9');
    await fs.writeFile(file, written.map((l) => l + '\n').join(''));

    const next = await log.append(seal(6));
    assert.equal(next.seq, 2, 'continues from HEAD, so the verifier still sees what happened');
    assert.equal((await verifyTenantAudit(root, 'fuji')).ok, false);
  },
);

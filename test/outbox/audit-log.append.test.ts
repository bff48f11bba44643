import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  AuditError,
  AuditLog,
  GENESIS_PREV,
  sadFingerprint,
  verifyAuditChain,
  verifyTenantAudit,
  type AuditEntryInput,
} from '../../src/outbox';
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

test(
  'append writes a hash chain that verifies, and returns each entry as written',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-11-24T17:00:00.000Z') });
    const sad = 'a-secret-SAD-value';
    const first = await log.append({
      type: 'authorisation',
      custody: 'provider-held',
      credentialId: 'fuji-eseal-ec',
      numSignatures: 20,
      expiresAt: '2026-11-24T17:05:00.000Z',
      sadFingerprint: sadFingerprint(sad),
    });
    const second = await log.append(seal(1));
    const third = await log.append({ type: 'refusal', invoice: 'INV-2', reason: 'PDF is encrypted' });

    assert.equal(first.seq, 1);
    assert.equal(first.prev, GENESIS_PREV);
    assert.equal(first.tenant, 'fuji');
    assert.equal(first.time, '2026-11-24T17:00:00.000Z');
    assert.equal(third.seq, 3);
    const file = path.join(root, 'fuji', 'audit', '2026-11.jsonl');
    const written = await lines(file);
    assert.equal(written.length, 3);
    assert.deepEqual(JSON.parse(written[1]!), second);
    assert.equal(second.prev, sha256(written[0]!), 'prev is the SHA-256 of the previous line');
    assert.equal(third.prev, sha256(written[1]!));
    assert.match(written[0]!, /^\{"seq":1,"time":"[^"]+","tenant":"fuji","type":"authorisation",/);
    assert.match(written[0]!, /"prev":"0{64}","hash":"[0-9a-f]{64}"\}$/);
    const { hash, ...body } = JSON.parse(written[2]!) as Record<string, unknown>;
    assert.equal(hash, sha256(JSON.stringify(body)), 'hash covers the line without its hash field');
    assert.ok(!written.join('\n').includes(sad), 'the SAD itself is never written');

    const result = await verifyTenantAudit(root, 'fuji');
    assert.deepEqual(result, {
      ok: true,
      entries: 3,
      files: [{ file, entries: 3, firstSeq: 1, lastSeq: 3 }],
      tenant: 'fuji',
    });
    const head = JSON.parse(await fs.readFile(path.join(root, 'fuji', 'audit', 'HEAD'), 'utf8'));
    assert.deepEqual(head, {
      seq: 3,
      hash: third.hash,
      lineSha256: sha256(written[2]!),
      file: '2026-11.jsonl',
    });
  },
);

test(
  'sadFingerprint is the first 16 hex of SHA-256, and append refuses a SAD where it belongs',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    assert.equal(sadFingerprint('abc'), sha256('abc').slice(0, 16));
    const log = AuditLog.forTenant(await tempDir(), 'fuji');
    await assert.rejects(
      log.append({
        type: 'approval-drawn',
        credentialId: 'c',
        sadFingerprint: 'eyJhbGciOiJIUzI1NiJ9.the-token-itself',
        count: 5,
        remaining: 15,
      }),
      (err: Error) => err instanceof AuditError && !err.message.includes('the-token-itself'),
    );
    await assert.rejects(log.append({ type: 'nonsense' } as unknown as AuditEntryInput), AuditError);
    assert.equal((await log.append(seal(1))).seq, 1, 'a refused entry takes no seq');
  },
);

test(
  'concurrent appends within one process keep one unbroken chain',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji');
    const other = AuditLog.forTenant(root, 'fuji'); // a second handle on the same log
    const records = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 ? log : other).append(seal(i))),
    );
    assert.deepEqual(
      records.map((r) => r.seq).sort((a, b) => a - b),
      Array.from({ length: 60 }, (_, i) => i + 1),
    );
    const result = await verifyTenantAudit(root, 'fuji');
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.entries, 60);
  },
);

test(
  'the chain continues across month files in name order, and never back into an earlier month',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    let now = new Date('2026-10-31T23:59:58.000Z');
    const log = AuditLog.forTenant(root, 'fuji', { now: () => now });
    for (let i = 1; i <= 3; i++) await log.append(seal(i));
    now = new Date('2026-11-01T00:00:01.000Z');
    const firstOfNovember = await log.append(seal(4));
    await log.append(seal(5));
    now = new Date('2026-10-31T23:59:59.000Z'); // the clock is set back across the month boundary
    await log.append(seal(6));

    const dir = path.join(root, 'fuji', 'audit');
    const october = path.join(dir, '2026-10.jsonl');
    const november = path.join(dir, '2026-11.jsonl');
    assert.equal((await lines(october)).length, 3);
    assert.equal((await lines(november)).length, 3);
    assert.equal(firstOfNovember.seq, 4);
    assert.equal(
      firstOfNovember.prev,
      sha256((await lines(october))[2]!),
      'links to the last line of October',
    );

    const result = await verifyTenantAudit(root, 'fuji');
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(
      result.files.map((f) => [path.basename(f.file), f.entries, f.firstSeq, f.lastSeq]),
      [
        ['2026-10.jsonl', 3, 1, 3],
        ['2026-11.jsonl', 3, 4, 6],
      ],
    );
    // A later file checked alone: its first entry's seq and prev are taken as given.
    const alone = await verifyAuditChain([november], { fromStart: false });
    assert.equal(alone.ok, true, JSON.stringify(alone));
    assert.equal(alone.entries, 3);
    const fromStart = await verifyAuditChain([november]);
    assert.deepEqual([fromStart.ok, !fromStart.ok && fromStart.line], [false, 1]);
  },
);

test(
  'a final line cut short by a crash is dropped by the next append',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-11-24T17:00:00.000Z') });
    await log.append(seal(1));
    const file = path.join(root, 'fuji', 'audit', '2026-11.jsonl');
    // The next append died halfway through its write, before HEAD was updated.
    await fs.appendFile(file, '{"seq":2,"time":"2026-11-24T17:00:00.000Z","ten');
    const cut = await verifyTenantAudit(root, 'fuji');
    assert.deepEqual([cut.ok, !cut.ok && cut.line], [false, 2]);

    const next = await log.append(seal(2));
    assert.equal(next.seq, 2);
    assert.equal((await lines(file)).length, 2);
    assert.equal((await verifyTenantAudit(root, 'fuji')).ok, true);
  },
);

test(
  'an append after the last line was removed keeps the gap visible instead of healing it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-11-24T17:00:00.000Z') });
    for (let i = 1; i <= 3; i++) await log.append(seal(i));
    const file = path.join(root, 'fuji', 'audit', '2026-11.jsonl');
    const kept = (await lines(file)).slice(0, 2);
    await fs.writeFile(file, kept.map((l) => l + '\n').join(''));

    const next = await log.append(seal(4));
    assert.equal(next.seq, 4, 'continues from HEAD, not from the shortened log');
    const result = await verifyTenantAudit(root, 'fuji');
    assert.equal(result.ok, false);
    assert.deepEqual([!result.ok && result.line], [3]);
    assert.match(!result.ok ? result.reason : '', /seq 4 where 3 was expected/);
  },
);

test('an unsafe tenant name is refused before any path is built', { timeout: TEST_TIMEOUT_MS }, () => {
  assert.throws(() => AuditLog.forTenant('/tmp/x', '../other'), AuditError);
});

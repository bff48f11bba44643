// The dashboard's `ops-action` entries: written in the chain like any other entry, accepted by the
// verifier (and so by `sealer audit verify`), and refused when they would not say who did what.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { AuditError, AuditLog, verifyTenantAudit, type AuditEntryInput } from '../../src/outbox';
import { run } from '../../src/cli/main';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'an ops-action entry is chained, verifies, and keeps its fields in the order written',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-12-01T06:00:00.000Z') });
    await log.append({ type: 'refusal', invoice: 'FJ-1', reason: 'PDF missing' });
    const rec = await log.append({
      type: 'ops-action',
      action: 'retry-invoice',
      by: 'admin',
      target: 'fuji|FJ-1|' + 'a'.repeat(64),
      result: 'requeued 1',
    });
    assert.equal(rec.seq, 2);
    const line = (await fs.readFile(path.join(root, 'fuji', 'audit', '2026-12.jsonl'), 'utf8')).split(
      '\n',
    )[1]!;
    assert.deepEqual(Object.keys(JSON.parse(line) as object), [
      'seq',
      'time',
      'tenant',
      'type',
      'action',
      'by',
      'target',
      'result',
      'prev',
      'hash',
    ]);
    const verified = await verifyTenantAudit(root, 'fuji');
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.equal(verified.entries, 2);

    // `sealer audit verify --file` on the same log says the chain is intact.
    let stdout = '';
    const realLog = console.log;
    console.log = (...a: unknown[]) => void (stdout += a.join(' ') + '\n');
    let code: number;
    try {
      code = await run([
        'node',
        'sealer',
        'audit',
        'verify',
        '--file',
        path.join(root, 'fuji', 'audit', '2026-12.jsonl'),
      ]);
    } finally {
      console.log = realLog;
    }
    assert.equal(code, 0, stdout);
    assert.match(stdout, /2 entries, chain intact/);
  },
);

test(
  'an ops-action entry without who, what or how it came out is refused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const log = AuditLog.forTenant(root, 'fuji');
    for (const missing of ['action', 'by', 'target', 'result'] as const) {
      const entry = { type: 'ops-action', action: 'pause', by: 'admin', target: 'fuji', result: 'paused' };
      const bad = { ...entry, [missing]: '' } as AuditEntryInput;
      await assert.rejects(
        log.append(bad),
        (err: unknown) => err instanceof AuditError && err.message.includes(missing),
      );
    }
    assert.deepEqual((await verifyTenantAudit(root, 'fuji')).entries, 0);
  },
);

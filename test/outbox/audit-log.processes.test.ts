// Several `sealer work` processes append to one tenant's audit trail at once: the lock file keeps them
// to one writer at a time, so the chain has every entry exactly once, in seq order, unbroken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AuditLog, verifyTenantAudit } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const AUDIT_LOG_JS = path.join(__dirname, '..', '..', 'src', 'outbox', 'audit-log.js');

// Runs in each child: appends `count` refusal entries at once (they also queue inside the process).
const CHILD = `
const { AuditLog } = require(${JSON.stringify(AUDIT_LOG_JS)});
const [root, tenant, id, count] = process.argv.slice(1);
const log = AuditLog.forTenant(root, tenant);
Promise.all(Array.from({ length: Number(count) }, (_, i) =>
  log.append({ type: 'refusal', invoice: 'P' + id + '-' + i, reason: 'process ' + process.pid })))
  .catch((err) => { console.error(err); process.exitCode = 1; });
`;

function runChild(root: string, id: number, count: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHILD, root, 'fuji', String(id), String(count)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}

test(
  '4 processes appending 50 entries each give 200 entries, seq 1..200, chain intact',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const results = await Promise.all([1, 2, 3, 4].map((id) => runChild(root, id, 50)));
    for (const r of results) assert.equal(r.code, 0, r.stderr);

    const result = await verifyTenantAudit(root, 'fuji');
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.entries, 200);
    const dir = path.join(root, 'fuji', 'audit');
    const records = (await Promise.all(result.files.map((f) => fs.readFile(f.file, 'utf8'))))
      .flatMap((text) => text.split('\n').slice(0, -1))
      .map((line) => JSON.parse(line) as { seq: number; invoice: string });
    assert.deepEqual(
      records.map((r) => r.seq),
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    const invoices = new Set(records.map((r) => r.invoice));
    assert.equal(invoices.size, 200, 'every append is there exactly once');
    assert.deepEqual(
      (await fs.readdir(dir)).filter((n) => !n.endsWith('.jsonl')),
      ['HEAD'],
      'no lock or temp file left behind',
    );
  },
);

test('a lock left by a process that died is taken over at once', { timeout: TEST_TIMEOUT_MS }, async () => {
  const root = await tempDir();
  const dir = path.join(root, 'fuji', 'audit');
  await fs.mkdir(dir, { recursive: true });
  const dead = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => dead.once('exit', resolve));
  await fs.writeFile(
    path.join(dir, '.lock'),
    JSON.stringify({ pid: dead.pid, host: os.hostname(), token: 'x' }),
  );
  const log = AuditLog.forTenant(root, 'fuji', { lock: { staleMs: 60_000, timeoutMs: 5_000 } });
  assert.equal((await log.append({ type: 'refusal', reason: 'after a crash' })).seq, 1);
});

test(
  'a lock untouched for longer than staleMs is taken over; a fresh one is waited for',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const dir = path.join(root, 'fuji', 'audit');
    await fs.mkdir(dir, { recursive: true });
    const lock = path.join(dir, '.lock');
    // Held by a live process (this one's parent) on another host name: only its age can free it.
    const holder = JSON.stringify({ pid: process.ppid, host: 'elsewhere', token: 'y' });
    await fs.writeFile(lock, holder);
    const log = AuditLog.forTenant(root, 'fuji', { lock: { staleMs: 1_000, timeoutMs: 300 } });
    await assert.rejects(log.append({ type: 'refusal', reason: 'too soon' }), /timed out waiting for lock/);

    const old = new Date(Date.now() - 5_000);
    await fs.utimes(lock, old, old);
    assert.equal((await log.append({ type: 'refusal', reason: 'stale' })).seq, 1);
    assert.equal((await verifyTenantAudit(root, 'fuji')).ok, true);
  },
);

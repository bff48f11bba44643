// Several `sealer work` processes append to one tenant's audit trail at once: the lock file keeps them
// to one writer at a time, so the chain has every entry exactly once, in seq order, unbroken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
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

// Runs in a child: takes the audit folder's lock, says so, and waits to be killed holding it.
const HOLD_LOCK = `
const { FileLock } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'outbox', 'audit-lock.js'))});
FileLock.acquire(process.argv[1], { staleMs: 60000 }).then(() => process.stdout.write('held\\n'));
setInterval(() => undefined, 1000);
`;

/** A child process that holds the lock at `lockPath` when this resolves. */
async function lockHolder(lockPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', HOLD_LOCK, lockPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const said = once(readline.createInterface({ input: child.stdout! }), 'line') as Promise<[string]>;
  const died = once(child, 'exit').then(([code]) => `lock holder exited with ${String(code)} first`);
  assert.equal(await Promise.race([said.then(([line]) => line), died]), 'held');
  return child;
}

test(
  'a lock left by a process that was killed is taken over at once',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const dir = path.join(root, 'fuji', 'audit');
    await fs.mkdir(dir, { recursive: true });
    const holder = await lockHolder(path.join(dir, '.lock'));
    // SIGKILL: no exit handler runs, so the lock folder stays behind, fresh (staleMs is 60 s).
    const exited = once(holder, 'exit');
    holder.kill('SIGKILL');
    await exited;
    assert.ok((await fs.stat(path.join(dir, '.lock'))).isDirectory(), 'the killed holder left its lock');
    const log = AuditLog.forTenant(root, 'fuji', { lock: { staleMs: 60_000, timeoutMs: 5_000 } });
    assert.equal((await log.append({ type: 'refusal', reason: 'after a crash' })).seq, 1);
    assert.deepEqual(
      (await fs.readdir(dir)).filter((n) => !n.endsWith('.jsonl')),
      ['HEAD'],
      'the dead holder lock and its holder file are gone',
    );
  },
);

test(
  'a lock untouched for longer than staleMs is taken over; a fresh one is waited for',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const dir = path.join(root, 'fuji', 'audit');
    await fs.mkdir(dir, { recursive: true });
    const lock = path.join(dir, '.lock');
    // Held by a live process (this one's parent) on another host name: only its age can free it.
    await fs.mkdir(lock);
    const st = await fs.stat(lock);
    await fs.writeFile(
      `${lock}.holder`,
      JSON.stringify({
        pid: process.ppid,
        host: 'elsewhere',
        token: 'y',
        ino: st.ino,
        birthtimeMs: st.birthtimeMs,
      }),
    );
    const log = AuditLog.forTenant(root, 'fuji', { lock: { staleMs: 2_000, timeoutMs: 300 } });
    await assert.rejects(log.append({ type: 'refusal', reason: 'too soon' }), /timed out waiting for lock/);

    const old = new Date(Date.now() - 5_000);
    await fs.utimes(lock, old, old);
    assert.equal((await log.append({ type: 'refusal', reason: 'stale' })).seq, 1);
    assert.equal((await verifyTenantAudit(root, 'fuji')).ok, true);
  },
);

test(
  'a lock held by a live process of this host is waited for, not taken over',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const dir = path.join(root, 'fuji', 'audit');
    await fs.mkdir(dir, { recursive: true });
    const holder = await lockHolder(path.join(dir, '.lock'));
    try {
      const log = AuditLog.forTenant(root, 'fuji', { lock: { staleMs: 60_000, timeoutMs: 300 } });
      await assert.rejects(log.append({ type: 'refusal', reason: 'held' }), /timed out waiting for lock/);
    } finally {
      const exited = once(holder, 'exit');
      holder.kill('SIGTERM');
      await exited;
    }
    // SIGTERM runs proper-lockfile's exit handler, which removes the lock folder: no wait at all now.
    const log = AuditLog.forTenant(root, 'fuji', { lock: { staleMs: 60_000, timeoutMs: 5_000 } });
    assert.equal((await log.append({ type: 'refusal', reason: 'after the holder left' })).seq, 1);
  },
);

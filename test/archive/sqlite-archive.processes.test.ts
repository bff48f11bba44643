// Several `sealer work` processes on one host write the same SQLite archive at once: from a file that
// does not exist yet (so they race to create and migrate it), one record at a time, sharing customers
// and some invoices. Nothing may be lost, and a shared invoice stays one row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { SqliteArchive } from '../../src/archive';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const ARCHIVE_JS = path.join(__dirname, '..', '..', 'src', 'archive', 'sqlite-archive.js');
const PROCESSES = 4;
const OWN = 250;
const SHARED = 20;

// Each child opens the archive, says "ready", waits for "go", then records its own invoices and the
// shared ones, interleaved, one record() each.
const CHILD = `
const { SqliteArchive } = require(${JSON.stringify(ARCHIVE_JS)});
const [file, id, own, shared] = process.argv.slice(1);
const archive = new SqliteArchive(file);
const entry = (number, customer, i) => ({
  tenant: 'fuji', invoiceNumber: number, customer, amount: i * 100, issueDate: '2025-0' + (1 + (i % 9)) + '-15',
  file: '/srv/' + number + '.pdf', sealedSha256: 'a'.repeat(64), sourceSha256: 'b'.repeat(64), level: 'B-T',
  sealedAt: '2026-12-01T00:00:00.000Z', certificateSerial: '01', job: 'nightly', runId: 'p' + id,
});
process.stdout.write('ready\\n');
process.stdin.once('data', async () => {
  try {
    for (let i = 0; i < Number(own); i++) {
      await archive.record(entry('P' + id + '-' + i, '取引先' + (i % 30), i));
      if (i < Number(shared)) await archive.record(entry('SHARED-' + i, '共通商事株式会社', i));
    }
    await archive.close();
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  }
  process.stdin.destroy();
});
`;

function start(
  file: string,
  id: number,
): { child: ChildProcess; ready: Promise<void>; exit: Promise<string> } {
  const child = spawn(process.execPath, ['-e', CHILD, file, String(id), String(OWN), String(SHARED)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`child ${id} exited (${code}) before ready: ${stderr}`)));
  });
  const exit = new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(stderr) : reject(new Error(`child ${id}: ${code} ${stderr}`)),
    );
  });
  return { child, ready, exit };
}

test(
  `${PROCESSES} processes writing one new archive file at once lose nothing`,
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const file = path.join(await tempDir('sealer-archive-procs-'), 'outbox', '.archive', 'index.sqlite');
    const children = Array.from({ length: PROCESSES }, (_, id) => start(file, id));
    try {
      await Promise.all(children.map((c) => c.ready));
      for (const c of children) c.child.stdin!.write('go\n');
      await Promise.all(children.map((c) => c.exit));
    } finally {
      // A child that failed must not leave the others waiting for "go" (and this file running).
      for (const c of children) if (c.child.exitCode === null) c.child.kill();
    }

    const archive = new SqliteArchive(file);
    try {
      const all = await archive.search({ tenant: 'fuji', limit: 1000 });
      assert.equal(all.total, PROCESSES * OWN + SHARED);
      const own = await archive.search({ tenant: 'fuji', customer: '取引先', limit: 1000 });
      assert.equal(own.total, PROCESSES * OWN);
      for (let id = 0; id < PROCESSES; id++)
        for (const i of [0, 1, OWN - 1])
          assert.equal((await archive.find('fuji', `P${id}-${i}`)).length, 1, `P${id}-${i}`);
      const mine = new Set<string>();
      for (let offset = 0; offset < PROCESSES * OWN + SHARED; offset += 1000)
        for (const r of (await archive.search({ tenant: 'fuji', limit: 1000, offset })).rows)
          mine.add(r.invoiceNumber);
      assert.equal(mine.size, PROCESSES * OWN + SHARED);
      for (let i = 0; i < SHARED; i++) assert.equal((await archive.find('fuji', `SHARED-${i}`)).length, 1);
      // The 30 customer names were created once each, by whichever process came first.
      assert.equal(
        (await archive.search({ tenant: 'fuji', customer: '取引先29' })).total,
        PROCESSES * Math.ceil((OWN - 29) / 30),
      );
    } finally {
      await archive.close();
    }
  },
);

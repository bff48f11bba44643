// `sealer audit verify` as a user runs it: by tenant (through the job definitions) or one file, its
// output lines and exit codes, and usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { AuditLog } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const execFileP = promisify(execFile);

async function sealer(args: string[]) {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A jobs folder with one fuji job whose outbox holds an audit trail over two months (5 entries). */
async function fujiWithAudit(): Promise<{ jobs: string; auditDir: string }> {
  const dir = await tempDir();
  const jobs = path.join(dir, 'jobs');
  await fs.mkdir(jobs);
  await fs.writeFile(
    path.join(jobs, 'fuji.json'),
    JSON.stringify({
      name: 'fuji-nightly',
      cron: '30 2 * * *',
      tenant: 'fuji',
      export: {
        folder: '../inbox',
        columns: { invoiceNumber: 'No', customerName: 'Name', amount: 'Amount', pdfPath: 'PDF' },
      },
      signing: {
        clientId: 'fuji-app',
        clientSecret: 'env:FUJI_CLIENT_SECRET',
        credentialId: 'fuji-eseal-ec',
        pin: 'env:FUJI_PIN',
        totpSecret: 'env:FUJI_TOTP',
      },
      outbox: '../outbox',
    }),
  );
  let now = new Date('2026-10-31T23:00:00.000Z');
  const log = AuditLog.forTenant(path.join(dir, 'outbox'), 'fuji', { now: () => now });
  for (let i = 1; i <= 5; i++) {
    if (i === 4) now = new Date('2026-11-01T01:00:00.000Z');
    await log.append({ type: 'refusal', invoice: `INV-${i}`, reason: 'bad PDF' });
  }
  return { jobs, auditDir: path.join(dir, 'outbox', 'fuji', 'audit') };
}

test(
  'audit verify --tenant checks every file of the tenant and says the chain is intact',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { jobs, auditDir } = await fujiWithAudit();
    const r = await sealer(['audit', 'verify', '--tenant', 'fuji', '--jobs', jobs]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      `${path.join(auditDir, '2026-10.jsonl')}: 3 entries (seq 1-3)`,
      `${path.join(auditDir, '2026-11.jsonl')}: 2 entries (seq 4-5)`,
      'audit fuji: 2 file(s), 5 entries, chain intact',
    ]);
  },
);

test('audit verify --file checks one file alone', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { auditDir } = await fujiWithAudit();
  const r = await sealer(['audit', 'verify', '--file', path.join(auditDir, '2026-11.jsonl')]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^audit fuji: 1 file\(s\), 2 entries, chain intact$/m);
});

test(
  'audit verify exits 1 naming the first bad line of a tampered log',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { jobs, auditDir } = await fujiWithAudit();
    const october = path.join(auditDir, '2026-10.jsonl');
    await fs.writeFile(october, (await fs.readFile(october, 'utf8')).replace('INV-2', 'INV-7'));
    const r = await sealer(['audit', 'verify', '--tenant', 'fuji', '--jobs', jobs]);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(
      r.stdout.trim().split('\n').at(-1),
      `audit fuji: INVALID at ${october}:2: hash mismatch: the entry was edited`,
    );
    const one = await sealer(['audit', 'verify', '--file', october]);
    assert.equal(one.code, 1, one.stdout);
    assert.match(one.stdout, /^audit fuji: INVALID at .*2026-10\.jsonl:2: hash mismatch/m);
  },
);

test('audit verify exits 1 when the last entry was removed', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { jobs, auditDir } = await fujiWithAudit();
  const november = path.join(auditDir, '2026-11.jsonl');
  const first = (await fs.readFile(november, 'utf8')).split('\n')[0]!;
  await fs.writeFile(november, first + '\n');
  const r = await sealer(['audit', 'verify', '--tenant', 'fuji', '--jobs', jobs]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /INVALID at .*2026-11\.jsonl:2: log ends at seq 4 but HEAD records seq 5/);
});

test(
  'audit verify with neither or both of --tenant and --file, or an unknown tenant, is a one-line error',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { jobs, auditDir } = await fujiWithAudit();
    for (const args of [
      ['audit', 'verify'],
      ['audit', 'verify', '--tenant', 'fuji', '--file', path.join(auditDir, '2026-11.jsonl')],
      ['audit', 'verify', '--tenant', 'nosuch', '--jobs', jobs],
      ['audit', 'verify', '--file'],
    ]) {
      const r = await sealer(args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '', args.join(' '));
    }
  },
);

test('audit verify --help says what it does', { timeout: TEST_TIMEOUT_MS }, async () => {
  const r = await sealer(['audit', 'verify', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: sealer audit verify/);
  assert.match(r.stdout, /--tenant <tenant>/);
  assert.match(r.stdout, /--file <file>/);
});

// The producer's side of a data export (issue 11), against real Redis: the two-files layout (the detail
// file is never an export of its own, must be there and quiet, and moves with its header file), each
// job's digest naming exactly its record's bytes in the spool, an invoice with several problems
// rejected once with each named, and a logo that cannot be read stopping the export before anything is
// queued.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { loadJobFile } from '../../src/jobs';
import { openSealQueue, produceRun, type SealJobData } from '../../src/queue';
import { readRejectsFile, writeExportCsv } from '../../src/export';
import { decodeInvoiceRecord } from '../../src/seal';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const logger = pino({ level: 'silent' });
const opts = { timeout: TEST_TIMEOUT_MS };
const REGISTRATION = 'T7000012050002';

const HEADER_COLUMNS = ['請求書番号', '発行日', '取引日', '取引先名'];
const DETAIL_COLUMNS = ['請求書番号', '品名', '数量', '単価', '税区分'];

function jobJson(ready: Record<string, unknown>, template: Record<string, unknown> = {}) {
  return {
    name: 'fuji-data',
    cron: '0 2 * * *',
    tenant: 'fuji',
    export: {
      folder: 'inbox',
      ready,
      data: {
        layout: { kind: 'two-files', details: '{name}-lines.csv' },
        header: {
          invoiceNumber: '請求書番号',
          issueDate: '発行日',
          transactionDate: '取引日',
          recipientName: '取引先名',
        },
        detail: {
          invoiceNumber: '請求書番号',
          description: '品名',
          quantity: '数量',
          unitPrice: '単価',
          taxCategory: '税区分',
        },
      },
    },
    invoice: {
      issuer: { name: '富士商事株式会社', registrationNumber: REGISTRATION },
      template: { accentColour: '#204080', ...template },
    },
    signing: { clientId: 'fuji-app', clientSecret: 'env:NOPE', credentialId: 'fuji-cred', batchSize: 10 },
    outbox: 'outbox',
  };
}

/** n invoices F-001.. with two lines each, the detail rows of each invoice apart; plus `bad` rows. */
async function writeExport(dir: string, n: number, bad: { headers?: string[][]; details?: string[][] } = {}) {
  const inbox = path.join(dir, 'inbox');
  await fs.mkdir(inbox, { recursive: true });
  const numbers = Array.from({ length: n }, (_, i) => `F-${String(i + 1).padStart(3, '0')}`);
  const headers = [
    ...numbers.map((no) => [no, '2026-11-30', '2026-11-28', `取引先${no}`]),
    ...(bad.headers ?? []),
  ];
  const details = [
    ...numbers.map((no) => [no, 'コピー用紙', '2', '500', '10%']),
    ...numbers.map((no) => [no, '緑茶', '3', '120', '8%']),
    ...(bad.details ?? []),
  ];
  const main = path.join(inbox, 'invoices-1130.csv');
  const lines = path.join(inbox, 'invoices-1130-lines.csv');
  await writeExportCsv(main, HEADER_COLUMNS, headers, 'cp932');
  await writeExportCsv(lines, DETAIL_COLUMNS, details, 'utf8');
  return { main, lines, numbers };
}

async function setup(template?: Record<string, unknown>, ready: Record<string, unknown> = { quietSec: 60 }) {
  const dir = await tempDir();
  const t = await testRedis();
  const jobFile = path.join(dir, 'fuji.json');
  await fs.writeFile(jobFile, JSON.stringify(jobJson(ready, template)));
  const queue = openSealQueue(t.connection, t.prefix);
  after(() => queue.close());
  return { dir, jobFile, queue, ...t };
}

const later = (file: string, sec: number) => fs.stat(file).then((s) => new Date(s.mtimeMs + sec * 1000));

test(
  'two files: one export, not two; each job names its record in the spool by digest; both move to processed/',
  opts,
  async () => {
    const { dir, jobFile, queue, redis, prefix } = await setup();
    const { main, lines, numbers } = await writeExport(dir, 12);
    const job = await loadJobFile(jobFile);
    const result = await produceRun(job, { queue, redis, prefix, logger, now: await later(lines, 120) });
    assert.deepEqual(result.failedFiles, []);
    assert.deepEqual(result.notReady, []);
    assert.equal(result.files.length, 1, 'the detail file is not an export of its own');
    assert.deepEqual(result.totals, { rows: 12, enqueued: 12, duplicates: 0, alreadySealed: 0, rejected: 0 });
    const processed = path.join(dir, 'inbox', 'processed');
    const moved = (await fs.readdir(processed)).sort();
    assert.ok(
      moved.some((f) => f.endsWith(path.basename(main))) &&
        moved.some((f) => f.endsWith(path.basename(lines))),
      moved.join(),
    );
    await assert.rejects(fs.access(main));
    await assert.rejects(fs.access(lines));

    const spoolFile = result.files[0]!.spoolFile!;
    const spool = await fs.readFile(spoolFile);
    const jobs = await queue.getJobs(['waiting']);
    assert.equal(jobs.length, 12);
    const seen = new Set<string>();
    for (const j of jobs) {
      const data = j.data as SealJobData;
      assert.equal(data.sourcePath, spoolFile);
      const { offset, length } = data.rendered!;
      const record = spool.subarray(offset, offset + length);
      assert.equal(crypto.createHash('sha256').update(record).digest('hex'), data.sourceSha256);
      const { document } = decodeInvoiceRecord(record, spoolFile);
      assert.equal(document.invoiceNumber, data.invoiceNumber);
      assert.equal(document.lines.length, 2, `${data.invoiceNumber}: its two lines, from the other file`);
      // 2 × 500 at 10 % and 3 × 120 at 8 %: 1,000 + 100 + 360 + 28.
      assert.equal(data.amount, 1488);
      assert.equal(data.customer, `取引先${data.invoiceNumber}`);
      assert.equal(data.registrationNumber, REGISTRATION);
      assert.equal(data.issueDate, '2026-11-30');
      seen.add(data.invoiceNumber);
    }
    assert.deepEqual([...seen].sort(), numbers);
  },
);

test(
  'a missing or still-written detail file leaves the export in place, naming the detail file',
  opts,
  async () => {
    const { dir, jobFile, queue, redis, prefix } = await setup();
    const { main, lines } = await writeExport(dir, 3);
    const job = await loadJobFile(jobFile);
    const held = path.join(dir, 'held-lines.csv');
    await fs.rename(lines, held);

    const missing = await produceRun(job, { queue, redis, prefix, logger, now: await later(main, 120) });
    assert.deepEqual(
      missing.notReady.map((n) => [n.file, n.reason]),
      [[main, `its detail file ${lines} is not there (yet)`]],
    );
    assert.equal(missing.totals.enqueued, 0);

    // There, but written 10 s ago under a 60 s quiet rule (the header file is long quiet).
    await fs.rename(held, lines);
    const now = await later(main, 120);
    await fs.utimes(lines, new Date(now.getTime() - 10_000), new Date(now.getTime() - 10_000));
    const fresh = await produceRun(job, { queue, redis, prefix, logger, now });
    assert.equal(fresh.notReady.length, 1);
    assert.equal(fresh.notReady[0]!.file, main);
    assert.match(
      fresh.notReady[0]!.reason,
      new RegExp(`^its detail file ${lines.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `),
    );
    assert.equal(await queue.forTenant('fuji').count(), 0);
    await fs.access(main);
    await fs.access(lines);

    const done = await produceRun(job, { queue, redis, prefix, logger, now: await later(lines, 120) });
    assert.equal(done.totals.enqueued, 3);
  },
);

test(
  'an invoice with several problems is rejected once, each problem named with its file; the others go on',
  opts,
  async () => {
    const { dir, jobFile, queue, redis, prefix } = await setup();
    const { lines } = await writeExport(dir, 4, {
      headers: [['F-BAD', '2026-13-45', '2026-11-28', '']],
      details: [
        ['F-BAD', '', '1', '100', '10%'],
        ['F-BAD', '付箋', 'two', '100', '7%'],
      ],
    });
    const job = await loadJobFile(jobFile);
    const result = await produceRun(job, { queue, redis, prefix, logger, now: await later(lines, 120) });
    assert.deepEqual(result.totals, { rows: 5, enqueued: 4, duplicates: 0, alreadySealed: 0, rejected: 1 });
    const rejects = (await readRejectsFile(result.files[0]!.rejectsFile!)).filter(
      (r) => r.invoiceNumber === 'F-BAD',
    );
    const reasons = rejects.map((r) => r.reason).join('\n');
    for (const field of ['issueDate', 'recipientName', 'description', 'quantity', 'taxCategory']) {
      assert.match(reasons, new RegExp(`^${field}: `, 'm'), `${field} is named:\n${reasons}`);
    }
    assert.ok(
      rejects
        .filter((r) => /^(description|quantity|taxCategory): /.test(r.reason))
        .every((r) => r.reason.endsWith(`(in ${path.basename(lines)})`)),
      `detail problems name the detail file:\n${reasons}`,
    );
    assert.ok(rejects.every((r) => r.line > 1));
  },
);

test(
  'a logo that cannot be read stops the export before anything is queued, naming the logo',
  opts,
  async () => {
    const { dir, jobFile, queue, redis, prefix } = await setup({ logo: 'missing-logo.png' });
    const { main, lines } = await writeExport(dir, 3);
    const job = await loadJobFile(jobFile);
    const result = await produceRun(job, { queue, redis, prefix, logger, now: await later(lines, 120) });
    assert.equal(result.totals.enqueued, 0);
    assert.equal(result.failedFiles.length, 1);
    assert.match(result.failedFiles[0]!.error, /invoice logo .*missing-logo\.png cannot be read \(ENOENT\)/);
    assert.equal(await queue.forTenant('fuji').count(), 0);
    await fs.access(main);
    await fs.access(lines);
  },
);

test(
  'under a marker rule, a detail file written after the marker keeps the export waiting',
  opts,
  async () => {
    const { dir, jobFile, queue, redis, prefix } = await setup(undefined, { marker: '.done' });
    const { main, lines } = await writeExport(dir, 3);
    const job = await loadJobFile(jobFile);
    const marker = `${main}.done`;
    await fs.writeFile(marker, '');
    const t = (await fs.stat(marker)).mtime;
    // The detail file is still being copied after the core system marked the header file.
    await fs.utimes(lines, new Date(t.getTime() + 5_000), new Date(t.getTime() + 5_000));
    const now = new Date(t.getTime() + 60_000);
    const waiting = await produceRun(job, { queue, redis, prefix, logger, now });
    assert.deepEqual(
      waiting.notReady.map((n) => n.reason),
      [`its detail file ${lines} changed after the marker ${marker} was written: not marked complete`],
    );
    assert.equal(await queue.forTenant('fuji').count(), 0);
    // Marked again once both are written: queued, the marker removed, both files moved.
    await fs.utimes(marker, new Date(t.getTime() + 10_000), new Date(t.getTime() + 10_000));
    const done = await produceRun(job, { queue, redis, prefix, logger, now });
    assert.equal(done.totals.enqueued, 3);
    await assert.rejects(fs.access(marker));
    await assert.rejects(fs.access(lines));
  },
);

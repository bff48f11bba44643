// A night of data exports (issue 11) against real Redis and the sandbox provider: two tenants' invoice
// data (CP932 and UTF-8, the rows of each invoice spread through the file), bad invoices rejected by
// field, every good invoice rendered in the prepare threads, sealed, and checked by pdfsig; the
// manifest carries each invoice's customer, total and issue date; a re-run seals nothing twice.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { startSandbox } from '../../src/sandbox';
import { createLogger } from '../../src/common/logger';
import { loadJobs } from '../../src/jobs';
import { openSealQueue, produceRun, runNight } from '../../src/queue';
import { readManifest } from '../../src/outbox';
import {
  sampleDataExportSpec,
  sampleInvoiceProfile,
  sampleRegistrationNumber,
  writeSampleDataExport,
} from '../../src/demo/sample-data-exports';
import { readRejectsFile } from '../../src/export';
import { defaultArchiveFile, openArchive, reindexTenant } from '../../src/archive';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { nssDbWithRoot, pdfsig } from '../helpers/pdfsig';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const run = promisify(execFile);
const BATCH = 25;

test(
  'a data-export night renders, seals and delivers every good invoice of two tenants, pdfsig-valid',
  { timeout: TEST_TIMEOUT_MS * 2 },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startSandbox({
      totpPeriodSec: 1,
      dataDir: path.join(dir, 'sandbox'),
      port: 0,
      logger: pino({ level: 'warn' }, pino.destination({ dest: path.join(dir, 'sandbox.log'), sync: true })),
    });
    after(() => sandbox.close());

    const registration = { sakura: sampleRegistrationNumber(1), fuji: sampleRegistrationNumber(2) };
    const sakura = await writeSampleDataExport({
      dir: path.join(dir, 'inbox', 'sakura'),
      invoicePrefix: 'SKR',
      count: 160,
      encoding: 'cp932',
      registrationNumber: registration.sakura,
      withBadInvoices: true,
    });
    const fuji = await writeSampleDataExport({
      dir: path.join(dir, 'inbox', 'fuji'),
      invoicePrefix: 'FJD',
      count: 140,
      encoding: 'utf8-bom',
      registrationNumber: registration.fuji,
      maxLines: 40,
    });

    const jobsDir = path.join(dir, 'jobs');
    await fs.mkdir(jobsDir);
    const secretsOf = (tenant: string) => path.join(dir, 'sandbox', 'secrets', tenant);
    for (const [tenant, credentialId, issuer] of [
      ['sakura', 'sakura-eseal-rsa', '株式会社サクラ商事'],
      ['fuji', 'fuji-eseal-ec', '富士電機販売株式会社'],
    ] as const) {
      await fs.writeFile(
        path.join(jobsDir, `${tenant}.json`),
        JSON.stringify({
          name: `${tenant}-nightly`,
          cron: '0 2 * * *',
          tenant,
          export: { folder: `../inbox/${tenant}`, ready: { quietSec: 0 }, data: sampleDataExportSpec() },
          invoice: sampleInvoiceProfile(issuer, ['東京都千代田区丸の内1-1-1', 'TEL 03-0000-0000']),
          signing: {
            providerUrl: sandbox.url,
            clientId: `${tenant}-app`,
            clientSecret: `file:${secretsOf(tenant)}/client-secret`,
            credentialId,
            pin: `file:${secretsOf(tenant)}/${credentialId}.pin`,
            totpSecret: `file:${secretsOf(tenant)}/${credentialId}.totp`,
            totp: { periodSec: 1 },
            batchSize: BATCH,
          },
          outbox: '../outbox',
        }),
      );
    }
    const jobs = await loadJobs(jobsDir);
    const logger = createLogger({
      level: 'info',
      destination: pino.destination({ dest: path.join(dir, 'night.log'), sync: true }),
    });
    const night = await runNight({ jobs, connection, redis, prefix, logger, concurrency: 4 * BATCH });
    const byTenant = Object.fromEntries(night.runs.map((r) => [r.tenant, r]));

    // Counts are of invoices: 160 + 3 bad, and 140.
    const counts = (t: string) => {
      const c = byTenant[t]!.counts;
      return { rows: c.rows, sealed: c.sealed, rejected: c.rejected, failed: c.failed };
    };
    assert.deepEqual(counts('sakura'), { rows: 163, sealed: 160, rejected: 3, failed: 0 });
    assert.deepEqual(counts('fuji'), { rows: 140, sealed: 140, rejected: 0, failed: 0 });

    // Each bad invoice is rejected naming itself and its field; nothing else is lost.
    const sakuraFile = byTenant.sakura!.produced.files[0]!;
    const rejects = await readRejectsFile(sakuraFile.rejectsFile!);
    for (const [invoice, field] of sakura.badInvoices) {
      const rows = rejects.filter((r) => r.invoiceNumber === invoice);
      assert.equal(rows.length, 1, `${invoice}: one reject row (${JSON.stringify(rejects)})`);
      assert.match(rows[0]!.reason, new RegExp(`^${field}: `), `${invoice}: ${rows[0]!.reason}`);
      assert.ok(rows[0]!.line > 1, `${invoice}: a line is named`);
    }
    assert.ok(sakuraFile.processedTo, 'the export went to processed/');
    assert.ok(sakuraFile.spoolFile?.startsWith(path.dirname(sakuraFile.processedTo)), sakuraFile.spoolFile);

    // Every sealed file: pdfsig valid and trusted; the manifest says the invoice's facts.
    const nss = await nssDbWithRoot(sandbox.rootCertPath);
    let checked = 0;
    const firstPages: string[] = [];
    for (const [tenant, data] of [
      ['sakura', sakura],
      ['fuji', fuji],
    ] as const) {
      const r = byTenant[tenant]!;
      const outDir = path.join(dir, 'outbox', tenant, r.produced.runDate);
      const manifest = await readManifest(path.join(outDir, 'manifest.csv'));
      assert.equal(manifest.length, data.invoices);
      for (const row of manifest) {
        assert.equal(row.amount, String(data.totals.get(row.invoiceNumber)), `${row.invoiceNumber}: amount`);
        assert.equal(row.issueDate, '2026-11-30');
        assert.equal(
          row.registrationNumber,
          registration[tenant],
          `${row.invoiceNumber}: registration number`,
        );
        assert.ok(row.customer && row.customer.length > 0);
        const file = path.join(outDir, row.file);
        const sealed = await fs.readFile(file);
        assert.equal(row.sealedSha256, crypto.createHash('sha256').update(sealed).digest('hex'));
        const out = await pdfsig(file, nss);
        assert.match(out, /Signature Validation: Signature is Valid\./, `${file}: ${out}`);
        assert.match(out, /Certificate Validation: Certificate is Trusted\./, `${file}: ${out}`);
        assert.match(out, /Total document signed/);
        checked++;
      }
      firstPages.push(path.join(outDir, manifest[0]!.file));
    }
    assert.equal(checked, 300);

    // The searchable archive has every rendered invoice with its customer, amount, date and registration.
    const archive = await openArchive(defaultArchiveFile(path.join(dir, 'outbox')));
    try {
      for (const [tenant, data] of [
        ['sakura', sakura],
        ['fuji', fuji],
      ] as const) {
        const { rows, total } = await archive.search({ tenant, limit: 1000 });
        assert.equal(total, data.invoices);
        for (const r of rows) {
          assert.equal(r.registrationNumber, registration[tenant], r.invoiceNumber);
          assert.equal(r.amount, data.totals.get(r.invoiceNumber), r.invoiceNumber);
          assert.equal(r.issueDate, '2026-11-30');
        }
      }
    } finally {
      await archive.close();
    }
    // A rebuilt index (from the manifests) keeps the registration numbers too.
    const rebuilt = await openArchive(path.join(dir, 'rebuilt.sqlite'));
    try {
      const result = await reindexTenant(rebuilt, path.join(dir, 'outbox'), 'fuji');
      assert.equal(result.rows, fuji.invoices);
      const { rows } = await rebuilt.search({ tenant: 'fuji', limit: 1000 });
      assert.ok(
        rows.length === fuji.invoices && rows.every((r) => r.registrationNumber === registration.fuji),
      );
    } finally {
      await rebuilt.close();
    }

    // The rendered invoice inside the seal: the mandatory items, as text pdftotext extracts.
    for (const [i, file] of firstPages.entries()) {
      const { stdout } = await run('pdftotext', ['-layout', '-f', '1', '-l', '1', file, '-']);
      const text = stdout.replace(/[ \t]+/g, ' ');
      assert.match(text, new RegExp(i === 0 ? '株式会社サクラ商事' : '富士電機販売株式会社'));
      assert.ok(text.includes(i === 0 ? registration.sakura : registration.fuji), text);
      assert.match(text, /請求書/);
      assert.match(text, /10%/);
    }
    // A 40-line invoice runs over its first page, with page numbers.
    const fujiDir = path.join(dir, 'outbox', 'fuji', byTenant.fuji!.produced.runDate);
    const long = path.join(fujiDir, 'FJD-000039.pdf');
    const { stdout: info } = await run('pdfinfo', [long]);
    const pages = Number(/Pages:\s+(\d+)/.exec(info)?.[1]);
    assert.ok(pages >= 2, `FJD-000039 (40 lines) has ${pages} page(s)`);
    const { stdout: last } = await run('pdftotext', ['-f', String(pages), '-l', String(pages), long, '-']);
    assert.ok(last.includes(`${pages}`), last);

    // Re-running the same exports seals nothing again: the same invoice data is the same job.
    const queue = openSealQueue(connection, prefix);
    after(() => queue.close());
    for (const r of night.runs) {
      const f = r.produced.files[0]!;
      await fs.rename(f.processedTo!, f.file);
    }
    const again = await Promise.all(jobs.map((job) => produceRun(job, { queue, redis, prefix, logger })));
    const totals = Object.fromEntries(again.map((r, i) => [jobs[i]!.tenant, r.totals]));
    assert.deepEqual(totals.sakura, {
      rows: 163,
      enqueued: 0,
      duplicates: 0,
      alreadySealed: 160,
      rejected: 3,
    });
    assert.deepEqual(totals.fuji, { rows: 140, enqueued: 0, duplicates: 0, alreadySealed: 140, rejected: 0 });
    assert.equal(sandbox.stats().signatures, 300);
  },
);

// One whole night against real Redis and the sandbox provider: two tenants (RSA and ECDSA), a CP932 and a
// UTF-8 export, bad rows, a corrupt PDF; every sealed file checked by pdfsig and `sealer verify`.
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
import { extractSignatures } from '../../src/pdf';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { sealerInProcess } from '../helpers/sealer-in-process';
import { tempDir } from '../helpers/temp-dir';
import { testRedis, dumpPrefix } from '../helpers/test-redis';
import { leaks } from '../helpers/secrets';
import { nssDbWithRoot, pdfsig } from '../helpers/pdfsig';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const run2 = promisify(execFile);
const BATCH = 10;

test(
  'a two-tenant night seals every good invoice, verifiably, in ceil(n/N) signHash calls',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startSandbox({
      totpPeriodSec: 1,
      dataDir: path.join(dir, 'sandbox'),
      port: 0,
      logger: pino({ level: 'trace' }, pino.destination({ dest: path.join(dir, 'sandbox.log'), sync: true })),
    });
    after(() => sandbox.close());

    const sakura = await writeSampleExport({
      dir: path.join(dir, 'inbox', 'sakura'),
      tenantName: 'Sakura Shoji K.K.',
      invoicePrefix: 'SKR',
      count: 25,
      encoding: 'cp932',
      withBadRows: true,
    });
    const fuji = await writeSampleExport({
      dir: path.join(dir, 'inbox', 'fuji'),
      tenantName: 'Fuji Denki K.K.',
      invoicePrefix: 'FJD',
      count: 23,
      encoding: 'utf8-bom',
    });
    // A corrupt PDF among good ones fails alone, with its reason.
    await fs.writeFile(
      path.join(dir, 'inbox', 'fuji', 'pdf', 'FJD-000023.pdf'),
      '%PDF-1.7\nthis is not a PDF body\n%%EOF\n',
    );

    const jobsDir = path.join(dir, 'jobs');
    await fs.mkdir(jobsDir);
    const secretsOf = (tenant: string) => path.join(dir, 'sandbox', 'secrets', tenant);
    for (const [tenant, credentialId, encoding] of [
      ['sakura', 'sakura-eseal-rsa', 'cp932'],
      ['fuji', 'fuji-eseal-ec', 'auto'],
    ] as const) {
      await fs.writeFile(
        path.join(jobsDir, `${tenant}.json`),
        JSON.stringify({
          name: `${tenant}-nightly`,
          cron: '0 2 * * *',
          tenant,
          export: { folder: `../inbox/${tenant}`, encoding, columns: SAMPLE_COLUMNS },
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
    const logFile = path.join(dir, 'night.log');
    const logger = createLogger({
      level: 'trace',
      destination: pino.destination({ dest: logFile, sync: true }),
    });
    const inputs = new Map<string, Buffer>();
    for (const [tenant, n] of [
      ['sakura', 25],
      ['fuji', 23],
    ] as const) {
      for (let i = 1; i <= n; i++) {
        const inv = `${tenant === 'sakura' ? 'SKR' : 'FJD'}-${String(i).padStart(6, '0')}`;
        inputs.set(inv, await fs.readFile(path.join(dir, 'inbox', tenant, 'pdf', `${inv}.pdf`)));
      }
    }

    const night = await runNight({
      jobs,
      connection,
      redis,
      prefix,
      logger,
      concurrency: 4 * BATCH,
      // All jobs are queued at once: with long waits (since the last hash and since a partial batch's
      // oldest), gaps between slow prepares on a loaded machine do not split a batch: signHash = ceil(n/N).
      batchMaxWaitMs: 5_000,
      batchMaxDelayMs: 10_000,
    });

    const byJob = Object.fromEntries(night.runs.map((r) => [r.tenant, r]));
    assert.equal(sakura.badRows, 3);
    assert.deepEqual(
      {
        rows: byJob.sakura!.counts.rows,
        sealed: byJob.sakura!.counts.sealed,
        rejected: byJob.sakura!.counts.rejected,
        failed: byJob.sakura!.counts.failed,
      },
      { rows: 28, sealed: 25, rejected: 3, failed: 0 },
    );
    assert.deepEqual(
      {
        rows: byJob.fuji!.counts.rows,
        sealed: byJob.fuji!.counts.sealed,
        rejected: byJob.fuji!.counts.rejected,
        failed: byJob.fuji!.counts.failed,
      },
      { rows: fuji.invoices, sealed: 22, rejected: 0, failed: 1 },
    );
    assert.equal(byJob.fuji!.failures[0]?.invoice, 'FJD-000023');
    const rejects = await fs.readFile(byJob.sakura!.produced.files[0]!.rejectsFile!, 'utf8');
    assert.match(rejects, /SKR-BAD-AMOUNT/);
    assert.match(rejects, /SKR-TRAVERSAL/);
    assert.match(rejects, /SKR-NO-PDF/);

    // ceil(good invoices / N) per credential when all are queued at once (the corrupt one never reaches signing).
    const calls = Object.fromEntries(night.credentials.map((c) => [c.tenant, c.signHashCalls]));
    assert.deepEqual(calls, { sakura: Math.ceil(25 / BATCH), fuji: Math.ceil(22 / BATCH) });
    assert.equal(sandbox.stats().signHash, Math.ceil(25 / BATCH) + Math.ceil(22 / BATCH));
    assert.equal(sandbox.stats().signatures, 47);

    // Every sealed file: the input is an exact prefix; pdfsig (with the sandbox root trusted) says valid.
    const nss = await nssDbWithRoot(sandbox.rootCertPath);
    const sealedFiles: string[] = [];
    for (const run of night.runs) {
      const outDir = path.join(dir, 'outbox', run.tenant, run.produced.runDate);
      const manifest = await readManifest(path.join(outDir, 'manifest.csv'));
      assert.equal(manifest.length, run.counts.sealed);
      for (const row of manifest) {
        const file = path.join(outDir, row.file);
        const sealed = await fs.readFile(file);
        const input = inputs.get(row.invoiceNumber)!;
        assert.ok(
          sealed.subarray(0, input.length).equals(input),
          `${row.invoiceNumber}: input is a byte prefix`,
        );
        assert.equal(row.sealedSha256, crypto.createHash('sha256').update(sealed).digest('hex'));
        const out = await pdfsig(file, nss);
        assert.match(out, /Signature Validation: Signature is Valid\./, `${file}: ${out}`);
        assert.match(out, /Certificate Validation: Certificate is Trusted\./, `${file}: ${out}`);
        assert.match(out, /ETSI\.CAdES\.detached/);
        assert.match(out, /Total document signed/);
        sealedFiles.push(file);
      }
    }
    assert.equal(sealedFiles.length, 47);
    // The product's verifier, in this process (verify.command.test.ts runs the bin).
    const verified = await sealerInProcess(['verify', '--root', sandbox.rootCertPath, ...sealedFiles]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /47 file\(s\) checked, all valid/);

    // Re-running the same exports seals nothing again: completed jobs are gone from Redis, and the
    // producer finds every sealed invoice in the outbox's sealed index ...
    const queue = openSealQueue(connection, prefix);
    after(() => queue.close());
    for (const run of night.runs) {
      const f = run.produced.files[0]!;
      await fs.rename(f.processedTo!, f.file);
    }
    // (except the invoice that failed for good, which a re-run queues again).
    const again = await Promise.all(jobs.map((job) => produceRun(job, { queue, redis, prefix, logger })));
    const againByJob = Object.fromEntries(again.map((r, i) => [jobs[i]!.tenant, r]));
    assert.deepEqual(againByJob.sakura!.totals, {
      rows: 28,
      enqueued: 0,
      duplicates: 0,
      alreadySealed: 25,
      rejected: 3,
    });
    assert.deepEqual(againByJob.fuji!.totals, {
      rows: 23,
      enqueued: 1,
      duplicates: 0,
      alreadySealed: 22,
      rejected: 0,
    });
    assert.equal(againByJob.fuji!.files[0]!.requeued, 1);
    assert.deepEqual(
      (await queue.getJobs(['waiting'])).map((j) => j.data.invoiceNumber),
      ['FJD-000023'],
    );
    // ... and a fresh queue (as after Redis lost its data) finds the sealed files and spends no signature.
    for (const r of again) {
      const f = r.files[0]!;
      await fs.rename(f.processedTo!, f.file);
    }
    // ... and a fresh queue (as after Redis lost its data), on a later run date, finds the seals in the
    // outbox's index and spends no signature.
    const signaturesBefore = sandbox.stats().signatures;
    const tomorrow = new Date(Date.now() + 24 * 3600_000);
    const second = await runNight({
      jobs,
      connection,
      redis,
      prefix: `${prefix}:again`,
      logger,
      concurrency: 4 * BATCH,
      now: tomorrow,
    });
    assert.notEqual(second.runs[0]!.produced.runDate, night.runs[0]!.produced.runDate);
    assert.equal(
      second.runs.reduce((n, r) => n + r.counts.alreadySealed, 0),
      47,
    );
    assert.equal(
      second.runs.reduce((n, r) => n + r.counts.sealed, 0),
      0,
    );
    assert.equal(sandbox.stats().signatures, signaturesBefore);

    // A delivery interrupted after the PDF was written (no manifest row, no index entry) is completed on
    // the retry without sealing again.
    const sakuraRun = byJob.sakura!;
    const sakuraDir = path.join(dir, 'outbox', 'sakura', sakuraRun.produced.runDate);
    const manifestFile = path.join(sakuraDir, 'manifest.csv');
    const victim = (await readManifest(manifestFile))[0]!;
    const manifestText = await fs.readFile(manifestFile, 'utf8');
    await fs.writeFile(
      manifestFile,
      manifestText
        .split('\r\n')
        .filter((l) => !l.startsWith(`${victim.invoiceNumber},`))
        .join('\r\n'),
    );
    await fs.rm(
      path.join(dir, 'outbox', 'sakura', '.sealed', `${victim.invoiceNumber}.${victim.sourceSha256}`),
    );
    for (const r of second.runs) {
      const f = r.produced.files[0]!;
      await fs.rename(f.processedTo!, f.file);
    }
    const third = await runNight({
      jobs: jobs.filter((j) => j.tenant === 'sakura'),
      connection,
      redis,
      prefix: `${prefix}:third`,
      logger,
      concurrency: 4 * BATCH,
      now: new Date(sakuraRun.produced.runDate + 'T12:00:00+09:00'),
    });
    assert.equal(third.runs[0]!.counts.alreadySealed, 25);
    assert.equal(sandbox.stats().signatures, signaturesBefore);
    const restored = (await readManifest(manifestFile)).filter(
      (r) => r.invoiceNumber === victim.invoiceNumber,
    );
    assert.equal(restored.length, 1, 'the manifest row is restored once');
    assert.equal(restored[0]!.sealedSha256, victim.sealedSha256);
    // The entry is a link used as a record (its target names the file and run, not a path to follow).
    await fs.lstat(
      path.join(dir, 'outbox', 'sakura', '.sealed', `${victim.invoiceNumber}.${victim.sourceSha256}`),
    );

    // The CMS of one sealed file per key type verifies with openssl against the sandbox root.
    for (const run of night.runs) {
      const outDir = path.join(dir, 'outbox', run.tenant, run.produced.runDate);
      const first = (await readManifest(path.join(outDir, 'manifest.csv')))[0]!;
      const [sig] = extractSignatures(await fs.readFile(path.join(outDir, first.file)));
      await fs.writeFile(path.join(dir, `${run.tenant}.p7s`), sig!.cmsDer);
      await fs.writeFile(path.join(dir, `${run.tenant}.content`), sig!.signedBytes);
      const verified = await run2('openssl', [
        'cms',
        '-verify',
        '-binary',
        '-inform',
        'DER',
        '-in',
        path.join(dir, `${run.tenant}.p7s`),
        '-content',
        path.join(dir, `${run.tenant}.content`),
        '-CAfile',
        sandbox.rootCertPath,
        '-purpose',
        'any',
        '-out',
        '/dev/null',
      ]);
      assert.match(verified.stderr, /Verification successful/);
    }

    // No secret was ever logged or written to Redis.
    logger.flush();
    const logged = await fs.readFile(logFile, 'utf8');
    const sandboxLogged = await fs.readFile(path.join(dir, 'sandbox.log'), 'utf8');
    const stored = await dumpPrefix(redis, prefix);
    const secrets = [
      ...sandbox.credentials.flatMap((c) => [c.clientSecretFile, c.pinFile, c.totpSecretFile]),
    ];
    const values = await Promise.all(secrets.map(async (f) => (await fs.readFile(f, 'utf8')).trim()));
    const issued = sandbox.issuedSecrets();
    assert.ok(issued.length >= 4, 'the sandbox issued tokens and SADs');
    for (const secret of [...values, ...issued]) {
      assert.ok(!leaks(logged, secret), 'a secret appears in the logs');
      assert.ok(!leaks(sandboxLogged, secret), 'a secret appears in the sandbox logs');
      assert.ok(!leaks(stored, secret), 'a secret appears in Redis');
    }
    assert.match(logged, /"size":10/, 'one log line per batch');
    // nights 1 and 2 (two runs each), the third night, and the re-run whose invoices were all duplicates
    assert.equal((logged.match(/"msg":"run settled"/g) ?? []).length, 6, 'one line per settled run');
  },
);

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
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { tempDir } from '../helpers/temp-dir';
import { testRedis, dumpPrefix } from '../helpers/test-redis';
import { nssDbWithRoot, pdfsig } from '../helpers/pdfsig';

const run = promisify(execFile);
const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const BATCH = 10;

test('a two-tenant night seals every good invoice, verifiably, in ceil(n/N) signHash calls', async () => {
  const dir = await tempDir();
  const { redis, prefix, connection } = await testRedis();
  const sandbox = await startSandbox({
    dataDir: path.join(dir, 'sandbox'),
    port: 0,
    logger: pino({ level: 'silent' }),
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
    batchMaxWaitMs: 200,
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
  const verified = await run(process.execPath, [
    CLI,
    'verify',
    '--root',
    sandbox.rootCertPath,
    ...sealedFiles,
  ]);
  assert.match(verified.stdout, /47 file\(s\) checked, all valid/);

  // Re-running the same exports seals nothing again: the producer sees every job already queued ...
  const queue = openSealQueue(connection, prefix);
  after(() => queue.close());
  for (const run of night.runs) {
    const f = run.produced.files[0]!;
    await fs.rename(f.processedTo!, f.file);
  }
  const again = await Promise.all(jobs.map((job) => produceRun(job, { queue, redis, prefix, logger })));
  assert.deepEqual(
    again.map((r) => r.totals.enqueued),
    [0, 0],
  );
  assert.equal(
    again.reduce((n, r) => n + r.totals.duplicates, 0),
    48,
  );
  // ... and a fresh queue (as after Redis lost its data) finds the sealed files and spends no signature.
  for (const r of again) {
    const f = r.files[0]!;
    await fs.rename(f.processedTo!, f.file);
  }
  const signaturesBefore = sandbox.stats().signatures;
  const second = await runNight({
    jobs,
    connection,
    redis,
    prefix: `${prefix}:again`,
    logger,
    concurrency: 4 * BATCH,
  });
  assert.equal(
    second.runs.reduce((n, r) => n + r.counts.alreadySealed, 0),
    47,
  );
  assert.equal(
    second.runs.reduce((n, r) => n + r.counts.sealed, 0),
    0,
  );
  assert.equal(sandbox.stats().signatures, signaturesBefore);

  // No secret was ever logged or written to Redis.
  logger.flush();
  const logged = await fs.readFile(logFile, 'utf8');
  const stored = (await dumpPrefix(redis, prefix)) + (await dumpPrefix(redis, `${prefix}:again`));
  const secrets = [...sandbox.credentials.flatMap((c) => [c.clientSecretFile, c.pinFile, c.totpSecretFile])];
  const values = await Promise.all(secrets.map(async (f) => (await fs.readFile(f, 'utf8')).trim()));
  const issued = sandbox.issuedSecrets();
  assert.ok(issued.length >= 4, 'the sandbox issued tokens and SADs');
  for (const secret of [...values, ...issued]) {
    assert.ok(!logged.includes(secret), 'a secret appears in the logs');
    assert.ok(!stored.includes(secret), 'a secret appears in Redis');
  }
  assert.match(logged, /"size":10/, 'one log line per batch');
});

// PAdES levels end to end against real Redis and the sandbox (its TSA, OCSP responder and CRL): each
// sealed file checked by validators nobody here wrote (pdfsig, openssl ts -verify, qpdf), and the
// network cost per level counted at the provider.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { PNG } from 'pngjs';
import { loadJobs } from '../../src/jobs';
import { runNight } from '../../src/queue';
import { readManifest } from '../../src/outbox';
import { extractSignatures } from '../../src/pdf';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { nssDbWithRoot, pdfsig } from '../helpers/pdfsig';
import {
  factorFileRefs,
  sandboxSecretsDir,
  startTestSandbox,
  writeImplicitSakuraJob,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';
import { sealerInProcess } from '../helpers/sealer-in-process';
import { dssByQpdf, genTimeOf, opensslTsVerify, signatureTimestampOf } from '../helpers/timestamp-check';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const silent = pino({ level: 'silent' });
const FAST_RETRIES = { attempts: 12, backoff: { type: 'fixed', delay: 250 } } as const;

async function inputsOf(dir: string, tenant: string): Promise<Map<string, Buffer>> {
  const pdfDir = path.join(dir, 'inbox', tenant, 'pdf');
  const inputs = new Map<string, Buffer>();
  for (const f of await fs.readdir(pdfDir))
    inputs.set(f.replace(/\.pdf$/, ''), await fs.readFile(path.join(pdfDir, f)));
  return inputs;
}

/** Strongly red pixels on page 1 rendered at 36 dpi by pdftoppm. */
async function redPixels(file: string): Promise<number> {
  const out = path.join(path.dirname(file), `.render-${path.basename(file)}`);
  await promisify(execFile)('pdftoppm', ['-r', '36', '-png', '-f', '1', '-l', '1', '-singlefile', file, out]);
  const png = PNG.sync.read(await fs.readFile(`${out}.png`));
  await fs.rm(`${out}.png`);
  let red = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    if (png.data[i]! > 150 && png.data[i + 1]! < 90 && png.data[i + 2]! < 90) red++;
  }
  return red;
}

async function fujiJob(dir: string, jobsDir: string, providerUrl: string, signing: Record<string, unknown>) {
  const secrets = sandboxSecretsDir(dir, 'fuji');
  return writeJobFile(jobsDir, {
    tenant: 'fuji',
    credentialId: 'fuji-eseal-ec',
    providerUrl,
    secretsDir: secrets,
    signing: { ...factorFileRefs(secrets, 'fuji-eseal-ec'), totp: { periodSec: 1 }, ...signing },
  });
}

test(
  'B-LTA through the provider TSA and B-T through an RFC 3161 URL: every validator agrees, TSA calls are one per timestamp',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const root = sandbox.rootCertPath;
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 12);
    await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', 9);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, {
      level: 'B-LTA',
      trustRoots: [root],
      batchSize: 5,
      appearance: { page: 1, x: 215, y: 742, size: 64, text: '桜商事株式会社' },
    });
    await fujiJob(dir, jobsDir, sandbox.url, {
      level: 'B-T',
      timestamp: { url: sandbox.tsaUrl },
      trustRoots: [root],
      batchSize: 5,
    });
    const night = await runNight({
      jobs: await loadJobs(jobsDir),
      connection,
      redis,
      prefix,
      logger: silent,
      concurrency: 20,
    });
    const byTenant = Object.fromEntries(night.runs.map((r) => [r.tenant, r]));
    assert.deepEqual(
      [
        byTenant.sakura!.counts.sealed,
        byTenant.sakura!.counts.failed,
        byTenant.fuji!.counts.sealed,
        byTenant.fuji!.counts.failed,
      ],
      [12, 0, 9, 0],
      JSON.stringify(night.runs.map((r) => r.failures)),
    );

    // One timestamp per signature and one per document, plus one probe per credential and night that
    // sizes the placeholder; revocation data fetched per certificate, not per invoice.
    const stats = sandbox.stats();
    assert.equal(stats.timestamp, 12 * 2 + 1, 'CSC signatures/timestamp calls (sakura, B-LTA)');
    assert.equal(stats.tsa, 9 + 1, 'RFC 3161 requests (fuji, B-T)');
    assert.ok(
      stats.ocsp + stats.crl >= 1 && stats.ocsp + stats.crl <= 3,
      `revocation fetches: ${stats.ocsp} OCSP, ${stats.crl} CRL`,
    );

    const nss = await nssDbWithRoot(root);
    for (const tenant of ['sakura', 'fuji'] as const) {
      const run = byTenant[tenant]!;
      const outDir = path.join(dir, 'outbox', tenant, run.produced.runDate);
      const inputs = await inputsOf(dir, tenant);
      const rows = await readManifest(path.join(outDir, 'manifest.csv'));
      assert.equal(rows.length, tenant === 'sakura' ? 12 : 9);
      for (const row of rows) {
        const file = path.join(outDir, row.file);
        const sealed = await fs.readFile(file);
        const input = inputs.get(row.invoiceNumber)!;
        assert.ok(
          sealed.subarray(0, input.length).equals(input),
          `${row.invoiceNumber}: input is a byte prefix`,
        );
        assert.equal(row.sealedSha256, crypto.createHash('sha256').update(sealed).digest('hex'));
        assert.equal(row.level, tenant === 'sakura' ? 'B-LTA' : 'B-T');

        const out = await pdfsig(file, nss);
        assert.doesNotMatch(out, /Signature is Invalid|Digest Mismatch/, `${file}: ${out}`);
        assert.match(out, /Signature Validation: Signature is Valid\./, `${file}: ${out}`);
        const signatures = extractSignatures(sealed);
        const cades = signatures.find((s) => s.subFilter === 'ETSI.CAdES.detached')!;
        const stamp = signatureTimestampOf(cades.cmsDer);
        assert.ok(stamp, `${row.invoiceNumber}: the CMS carries a signature timestamp`);
        assert.match(await opensslTsVerify(stamp.token, stamp.imprint, root), /Verification: OK/);
        const signedAt = genTimeOf(stamp.token);
        assert.ok(Math.abs(signedAt.getTime() - Date.now()) < 10 * 60_000, 'genTime is now');

        if (row === rows[0]) {
          // The job's visible seal is on the page: red pixels where the stamp is, as poppler renders it.
          const red = await redPixels(file);
          assert.ok(tenant === 'sakura' ? red > 200 : red === 0, `${tenant}: ${red} red pixels`);
        }
        if (tenant === 'fuji') {
          assert.equal(signatures.length, 1);
          assert.equal(await dssByQpdf(file), undefined, 'B-T carries no DSS');
          continue;
        }
        // B-LTA: signature, then the DSS update, then a document timestamp over the whole file.
        assert.equal(signatures.length, 2, `${row.invoiceNumber}: signature and document timestamp`);
        const doc = signatures[1]!;
        assert.equal(doc.subFilter, 'ETSI.RFC3161');
        assert.ok(doc.coversWholeDocument, 'the document timestamp covers every byte');
        const docDigest = crypto.createHash('sha256').update(doc.signedBytes).digest();
        assert.match(await opensslTsVerify(doc.cmsDer, docDigest, root), /Verification: OK/);
        // pdfsig 22.12 lists a document timestamp (its TSA, that it covers everything) but cannot validate one.
        assert.match(out, /Signature #2:[\s\S]*Common Name: Sealer Sandbox TSA[\s\S]*Total document signed/);
        const dss = await dssByQpdf(file);
        assert.ok(dss, `${row.invoiceNumber}: qpdf finds a /DSS in the catalog`);
        // signer (leaf, root) and TSA (its certificate) chains; revocation for the leaf and the TSA cert
        assert.ok(dss.certs >= 3, `certs in DSS: ${dss.certs}`);
        assert.ok(dss.ocsps + dss.crls >= 2, `revocation entries: ${dss.ocsps} OCSP, ${dss.crls} CRL`);
        const vriKey = crypto.createHash('sha1').update(cades.contents).digest('hex').toUpperCase();
        assert.deepEqual(dss.vri, [`/${vriKey}`], 'VRI keyed by the signature');
        // The DSS update lies between the signature and the document timestamp, both keep their bytes.
        assert.ok(cades.byteRange[2] + cades.byteRange[3] < doc.byteRange[2] + doc.byteRange[3]);
      }
      // And the product's own verifier, the command finance runs (in this process: verify.command.test.ts
      // runs the bin), reaches the same level for every file.
      const verified = await sealerInProcess([
        'verify',
        '--json',
        '--root',
        root,
        ...rows.map((r) => path.join(outDir, r.file)),
      ]);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      const report = JSON.parse(verified.stdout) as {
        signatures: { kind: string; valid: boolean; level?: string }[];
      }[];
      for (const file of report) {
        assert.ok(
          file.signatures.every((sig) => sig.valid),
          JSON.stringify(file),
        );
        assert.equal(file.signatures[0]!.level, tenant === 'sakura' ? 'B-LTA' : 'B-T');
      }
    }
  },
);

test(
  'a TSA outage fails no invoice while retries remain and seals them all once it recovers; B-B is never the fallback',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 6);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, {
      level: 'B-T',
      timestamp: { url: sandbox.tsaUrl },
      trustRoots: [sandbox.rootCertPath],
      timestampAttempts: 1,
    });
    const jobs = await loadJobs(jobsDir);
    sandbox.setTsaOutage(true);
    // Recover once the outage has been seen by more than one attempt of the night.
    const recovered = (async () => {
      while (sandbox.stats().tsa < 4) await new Promise((r) => setTimeout(r, 50));
      sandbox.setTsaOutage(false);
    })();
    const night = await runNight({
      jobs,
      connection,
      redis,
      prefix,
      logger: silent,
      concurrency: 6,
      jobOptions: FAST_RETRIES,
    });
    await recovered;
    const run = night.runs[0]!;
    assert.equal(run.counts.sealed, 6, JSON.stringify(run.failures));
    assert.equal(run.counts.failed, 0);
    const rows = await readManifest(path.join(dir, 'outbox', 'sakura', run.produced.runDate, 'manifest.csv'));
    assert.ok(rows.every((r) => r.level === 'B-T'));
    for (const row of rows) {
      const sealed = await fs.readFile(path.join(dir, 'outbox', 'sakura', run.produced.runDate, row.file));
      assert.ok(
        signatureTimestampOf(extractSignatures(sealed)[0]!.cmsDer),
        `${row.invoiceNumber} has its timestamp`,
      );
    }
  },
);

test(
  'a TSA that stays down fails each invoice with the reason and delivers nothing',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 4);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, {
      level: 'B-LTA',
      trustRoots: [sandbox.rootCertPath],
      timestampAttempts: 2,
    });
    sandbox.setTsaOutage(true);
    const night = await runNight({
      jobs: await loadJobs(jobsDir),
      connection,
      redis,
      prefix,
      logger: silent,
      concurrency: 4,
      jobOptions: { attempts: 2, backoff: { type: 'fixed', delay: 100 } },
    });
    const run = night.runs[0]!;
    assert.deepEqual([run.counts.sealed, run.counts.failed], [0, 4]);
    for (const f of run.failures) assert.match(f.reason, /timestamp|TSA|503/i, f.reason);
    const outDir = path.join(dir, 'outbox', 'sakura', run.produced.runDate);
    const files = await fs.readdir(outDir).catch(() => [] as string[]);
    assert.deepEqual(
      files.filter((f) => f.endsWith('.pdf')),
      [],
      'no file sealed at a lower level',
    );
  },
);

test(
  'a revoked credential stops at once (no signature spent, each invoice names the revocation); another credential seals at B-LT',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const root = sandbox.rootCertPath;
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 5);
    await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', 5);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, { level: 'B-LT', trustRoots: [root] });
    await fujiJob(dir, jobsDir, sandbox.url, { level: 'B-LT', trustRoots: [root] });
    sandbox.revoke('sakura-eseal-implicit', 'keyCompromise');
    const night = await runNight({
      jobs: await loadJobs(jobsDir),
      connection,
      redis,
      prefix,
      logger: silent,
      concurrency: 10,
      jobOptions: FAST_RETRIES,
    });
    const byTenant = Object.fromEntries(night.runs.map((r) => [r.tenant, r]));
    assert.deepEqual([byTenant.sakura!.counts.sealed, byTenant.sakura!.counts.failed], [0, 5]);
    for (const f of byTenant.sakura!.failures) assert.match(f.reason, /revoked/, f.reason);
    assert.deepEqual([byTenant.fuji!.counts.sealed, byTenant.fuji!.counts.failed], [5, 0]);
    const sakura = night.credentials.find((c) => c.tenant === 'sakura');
    assert.equal(sakura?.signatures ?? 0, 0, 'no signature spent on the revoked credential');
    assert.equal(sandbox.stats().signatures, 5);
    const nss = await nssDbWithRoot(root);
    const outDir = path.join(dir, 'outbox', 'fuji', byTenant.fuji!.produced.runDate);
    for (const row of await readManifest(path.join(outDir, 'manifest.csv'))) {
      const file = path.join(outDir, row.file);
      assert.match(await pdfsig(file, nss), /Signature is Valid/);
      const dss = await dssByQpdf(file);
      assert.ok(dss && dss.certs >= 3 && dss.ocsps + dss.crls >= 2, JSON.stringify(dss));
    }
  },
);

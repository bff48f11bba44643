// Archive renewal end to end against real Redis and the sandbox: files sealed at B-LTA under a TSA
// certificate about to expire (and at B-T) are renewed after the TSA certificate is rotated; each
// renewed file is checked by validators nobody here wrote (pdfsig, openssl ts -verify, qpdf --check),
// the delivered bytes stay a prefix, and the manifest and audit trail record the renewal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import pino from 'pino';
import { loadJobs, type JobDefinition } from '../../src/jobs';
import { runNight, runRenewal, summaryLine, SigningContexts } from '../../src/queue';
import { trustRootsOf } from '../../src/queue/signing-contexts';
import { auditDir, listAuditFiles, readManifest, replaceWithGrown, type ManifestRow } from '../../src/outbox';
import { extractSignatures } from '../../src/pdf';
import { verifyTimestampToken } from '../../src/pades';
import { ArchiveRenewer } from '../../src/seal';
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
import { opensslTsVerify } from '../helpers/timestamp-check';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const silent = pino({ level: 'silent' });
const FAST_RETRIES = { attempts: 12, backoff: { type: 'fixed', delay: 250 } } as const;
const YEAR = 365 * 86_400_000;
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

interface Sealed {
  tenant: string;
  dir: string;
  rows: ManifestRow[];
}

/** Seals sakura at B-LTA (provider TSA) and fuji at B-T (RFC 3161 URL) with a 30-day TSA certificate. */
async function sealedOutbox(invoices: { sakura: number; fuji: number }, fujiLevel = 'B-T') {
  const dir = await tempDir();
  const { redis, prefix, connection } = await testRedis();
  const sandbox = await startTestSandbox(dir, { tsaCertificateDays: 30 });
  const root = sandbox.rootCertPath;
  const jobsDir = path.join(dir, 'jobs');
  await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', invoices.sakura);
  await writeImplicitSakuraJob(dir, jobsDir, sandbox, {
    level: 'B-LTA',
    trustRoots: [root],
    timestampAttempts: 1,
  });
  if (invoices.fuji > 0) {
    await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', invoices.fuji);
    const secrets = sandboxSecretsDir(dir, 'fuji');
    await writeJobFile(jobsDir, {
      tenant: 'fuji',
      credentialId: 'fuji-eseal-ec',
      providerUrl: sandbox.url,
      secretsDir: secrets,
      signing: {
        ...factorFileRefs(secrets, 'fuji-eseal-ec'),
        totp: { periodSec: 1 },
        level: fujiLevel,
        timestamp: { url: sandbox.tsaUrl },
        trustRoots: [root],
        timestampAttempts: 1,
      },
    });
  }
  const jobs = await loadJobs(jobsDir);
  const night = await runNight({ jobs, connection, redis, prefix, logger: silent, concurrency: 10 });
  const outbox = path.join(dir, 'outbox');
  const sealed: Sealed[] = [];
  for (const run of night.runs) {
    assert.equal(run.counts.failed, 0, JSON.stringify(run.failures));
    const folder = path.join(outbox, run.tenant, run.produced.runDate);
    sealed.push({
      tenant: run.tenant,
      dir: folder,
      rows: await readManifest(path.join(folder, 'manifest.csv')),
    });
  }
  return { dir, redis, prefix, connection, sandbox, root, jobs, outbox, sealed };
}

async function bytesOf(sealed: Sealed[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const s of sealed)
    for (const r of s.rows) out.set(path.join(s.dir, r.file), await fs.readFile(path.join(s.dir, r.file)));
  return out;
}

async function auditRecords(outbox: string, tenant: string): Promise<Record<string, unknown>[]> {
  const records: Record<string, unknown>[] = [];
  for (const file of await listAuditFiles(auditDir(outbox, tenant))) {
    for (const line of (await fs.readFile(file, 'utf8')).split('\n'))
      if (line) records.push(JSON.parse(line));
  }
  return records;
}

async function tsaCertOf(token: Buffer, stamped: Buffer): Promise<X509Certificate> {
  const check = await verifyTimestampToken(token, stamped);
  return new X509Certificate(check.tsaCertificateDer!);
}

test(
  'renewal before the TSA certificate expires: a new document timestamp by the new TSA certificate, every validator agrees, the old file is a prefix; B-T becomes B-LTA; a dry run changes nothing',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const o = await sealedOutbox({ sakura: 3, fuji: 2 });
    const before = await bytesOf(o.sealed);
    await o.sandbox.rotateTsaCertificate(3650);

    // Dry run: lists every file with its reason (and the expiry for B-LTA), writes nothing.
    const dry = await runRenewal({
      outboxRoot: o.outbox,
      jobs: o.jobs,
      withinMs: YEAR,
      dryRun: true,
      logger: silent,
    });
    assert.equal(dry.checked, 5);
    const wanted = dry.items.filter((i) => i.action === 'renew');
    assert.equal(wanted.length, 5, JSON.stringify(dry.items.map((i) => i.reason)));
    for (const i of wanted.filter((w) => w.tenant === 'sakura')) {
      assert.match(i.reason, /TSA certificate .* expires .* within the margin/);
      assert.ok(i.tsaCertificateExpiry && i.tsaCertificateExpiry.getTime() - Date.now() < 31 * 86_400_000);
    }
    for (const i of wanted.filter((w) => w.tenant === 'fuji'))
      assert.match(i.reason, /B-T: .*revocation data is missing/);
    for (const [file, bytes] of before)
      assert.ok((await fs.readFile(file)).equals(bytes), `dry run left ${file} alone`);

    const tsaCallsBefore = o.sandbox.stats().timestamp + o.sandbox.stats().tsa;
    const summary = await runRenewal({
      outboxRoot: o.outbox,
      jobs: o.jobs,
      withinMs: YEAR,
      connection: o.connection,
      prefix: o.prefix,
      logger: silent,
      jobOptions: FAST_RETRIES,
    });
    assert.equal(
      summaryLine(summary),
      'renew: 5 files checked, 5 renewed, 0 skipped, 0 failed',
      JSON.stringify(summary.items),
    );
    // One timestamp per file plus one probe per job definition (sakura, fuji).
    assert.equal(o.sandbox.stats().timestamp + o.sandbox.stats().tsa - tsaCallsBefore, 5 + 2);

    const nss = await nssDbWithRoot(o.root);
    for (const s of o.sealed) {
      const latest = new Map(
        (await readManifest(path.join(s.dir, 'manifest.csv'))).map((r) => [r.invoiceNumber, r]),
      );
      const audit = (await auditRecords(o.outbox, s.tenant)).filter((r) => r.type === 'renewal');
      assert.equal(audit.length, s.rows.length, `${s.tenant}: one renewal audit entry per file`);
      for (const row of s.rows) {
        const file = path.join(s.dir, row.file);
        const old = before.get(file)!;
        const renewed = await fs.readFile(file);
        assert.ok(
          renewed.length > old.length && renewed.subarray(0, old.length).equals(old),
          `${file}: old bytes are a prefix`,
        );

        const oldSigs = extractSignatures(old);
        const sigs = extractSignatures(renewed);
        assert.equal(sigs.length, oldSigs.length + 1, 'one more document timestamp');
        const doc = sigs.at(-1)!;
        assert.equal(doc.subFilter, 'ETSI.RFC3161');
        assert.ok(doc.coversWholeDocument);
        const digest = crypto.createHash('sha256').update(doc.signedBytes).digest();
        assert.match(await opensslTsVerify(doc.cmsDer, digest, o.root), /Verification: OK/);
        const newTsa = await tsaCertOf(doc.cmsDer, doc.signedBytes);
        assert.ok(
          new Date(newTsa.validTo).getTime() - Date.now() > 9 * YEAR,
          'stamped by the rotated TSA certificate',
        );
        if (s.tenant === 'sakura') {
          const oldTsa = await tsaCertOf(oldSigs.at(-1)!.cmsDer, oldSigs.at(-1)!.signedBytes);
          assert.notEqual(oldTsa.serialNumber, newTsa.serialNumber);
        }

        const out = await pdfsig(file, nss);
        assert.match(out, /Signature #1:[\s\S]*Signature Validation: Signature is Valid\./, out);
        assert.doesNotMatch(out, /Signature is Invalid|Digest Mismatch/, out);
        const qpdf = await promisify(execFile)('qpdf', ['--check', file]);
        assert.match(qpdf.stdout, /No syntax or stream encoding errors found/);

        const now = latest.get(row.invoiceNumber)!;
        assert.equal(now.sealedSha256, sha256(renewed), 'latest manifest row has the new digest');
        assert.equal(now.level, 'B-LTA');
        const entry = audit.find((a) => a.invoice === row.invoiceNumber)!;
        assert.equal(entry.oldSealedSha256, row.sealedSha256);
        assert.equal(entry.newSealedSha256, now.sealedSha256);
        assert.match(String(entry.tsa), /Sealer Sandbox TSA/);
      }
    }

    // The product's own verifier sees every signature valid, and nothing is left to renew.
    const again = await runRenewal({
      outboxRoot: o.outbox,
      jobs: o.jobs,
      withinMs: YEAR,
      dryRun: true,
      logger: silent,
    });
    assert.equal(summaryLine(again), 'renew: 5 files checked, 0 renewed, 5 skipped (5 up to date), 0 failed');
  },
);

test(
  'a TSA outage during renewal: the job retries and renews after recovery; if it stays down the file fails with the reason and is unchanged',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // sakura at B-LTA through the provider's TSA, fuji at B-LT (no document timestamp) through an RFC 3161 URL.
    const o = await sealedOutbox({ sakura: 2, fuji: 1 }, 'B-LT');
    await o.sandbox.rotateTsaCertificate(3650);
    const before = await bytesOf(o.sealed);
    const plan = await runRenewal({
      outboxRoot: o.outbox,
      jobs: o.jobs,
      withinMs: YEAR,
      dryRun: true,
      logger: silent,
    });
    assert.match(plan.items.find((i) => i.tenant === 'fuji')!.reason, /^B-LT: no document timestamp$/);

    // Stays down: every file fails, with the reason, and keep their bytes.
    o.sandbox.setTsaOutage(true);
    const down = await runRenewal({
      outboxRoot: o.outbox,
      jobs: o.jobs,
      withinMs: YEAR,
      connection: o.connection,
      prefix: o.prefix,
      logger: silent,
      jobOptions: { attempts: 2, backoff: { type: 'fixed', delay: 100 } },
    });
    assert.equal(down.failed, 3, summaryLine(down));
    for (const i of down.items) assert.match(i.error ?? '', /timestamp|TSA|503/i, i.error);
    for (const [file, bytes] of before)
      assert.ok((await fs.readFile(file)).equals(bytes), `${file} unchanged`);

    // Down, then back: the retries renew them all (the failed jobs of the same digest run again).
    const calls = o.sandbox.stats().timestamp;
    const recovered = (async () => {
      while (o.sandbox.stats().timestamp < calls + 2) await new Promise((r) => setTimeout(r, 50));
      o.sandbox.setTsaOutage(false);
    })();
    const up = await runRenewal({
      outboxRoot: o.outbox,
      jobs: o.jobs,
      withinMs: YEAR,
      connection: o.connection,
      prefix: o.prefix,
      logger: silent,
      jobOptions: FAST_RETRIES,
    });
    await recovered;
    assert.equal(
      summaryLine(up),
      'renew: 3 files checked, 3 renewed, 0 skipped, 0 failed',
      JSON.stringify(up.items),
    );
    for (const s of o.sealed) {
      const rows = await readManifest(path.join(s.dir, 'manifest.csv'));
      assert.deepEqual(
        rows.slice(s.rows.length).map((r) => r.level),
        s.rows.map(() => 'B-LTA'),
        `${s.tenant}: the renewal rows say B-LTA`,
      );
    }
    for (const [file, bytes] of before) {
      const now = await fs.readFile(file);
      assert.ok(now.length > bytes.length && now.subarray(0, bytes.length).equals(bytes));
    }
  },
);

test(
  'a renewal interrupted after the rename is finished by the next run without timestamping again',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const o = await sealedOutbox({ sakura: 1, fuji: 0 });
    await o.sandbox.rotateTsaCertificate(3650);
    const [s] = o.sealed;
    const row = s!.rows[0]!;
    const file = path.join(s!.dir, row.file);
    const old = await fs.readFile(file);
    // What a worker had done when it died: renewed and renamed, no audit entry, no manifest row.
    const job = o.jobs.find((j) => j.tenant === 'sakura') as JobDefinition;
    const contexts = new SigningContexts({ logger: silent });
    const renewer = new ArchiveRenewer({
      trustRootsDer: await trustRootsOf(job),
      timestamps: await contexts.timestampSourceFor(job),
      revocation: contexts.revocation(),
    });
    const { renewed } = await renewer.renew(old);
    await replaceWithGrown(file, renewed, sha256(old));
    await contexts.close();

    const calls = o.sandbox.stats().timestamp;
    const plan = await runRenewal({
      outboxRoot: o.outbox,
      jobs: o.jobs,
      withinMs: YEAR,
      dryRun: true,
      logger: silent,
    });
    assert.equal(plan.items[0]!.action, 'finish');
    const summary = await runRenewal({
      outboxRoot: o.outbox,
      jobs: o.jobs,
      withinMs: YEAR,
      connection: o.connection,
      prefix: o.prefix,
      logger: silent,
      jobOptions: FAST_RETRIES,
    });
    assert.equal(summary.renewed, 1, JSON.stringify(summary.items));
    assert.equal(summary.items[0]!.outcome, 'finished');
    assert.equal(o.sandbox.stats().timestamp, calls, 'no timestamp asked for');
    assert.ok((await fs.readFile(file)).equals(renewed), 'the file is the one renewed before');
    const rows = await readManifest(path.join(s!.dir, 'manifest.csv'));
    assert.deepEqual(
      rows.map((r) => [r.sealedSha256, r.level]),
      [
        [row.sealedSha256, 'B-LTA'],
        [sha256(renewed), 'B-LTA'],
      ],
    );
    const audit = (await auditRecords(o.outbox, 'sakura')).filter((r) => r.type === 'renewal');
    assert.equal(audit.length, 1);
  },
);

// Tenant isolation (issue 4): a job is sealed only with its own tenant's credential, factors and SAD,
// checked against the job definition before any provider call. Jobs forged straight onto the seal
// queue — tenant sakura with fuji's job definition, a source in fuji's export folder or outbox, an
// invoice number that climbs out of the outbox — fail at once, and the provider sees nothing at all.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { UnrecoverableError } from 'bullmq';
import { loadJobs } from '../../src/jobs';
import { openSealQueue, runKey, SealWorker, sealJobId, type SealJobData } from '../../src/queue';
import { auditDir, listAuditFiles } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { factorFileRefs, startTestSandbox, writeJobFile, writeTenantExport } from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => !e.isDirectory()) // sealed-index entries are links
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
    .sort();
}

test(
  'forged jobs crossing tenants fail at once, before any provider call, and write nothing but refusals',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);

    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 2);
    await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', 2);
    const jobsDir = path.join(dir, 'jobs');
    for (const [tenant, credentialId] of [
      ['sakura', 'sakura-eseal-rsa'],
      ['fuji', 'fuji-eseal-ec'],
    ] as const) {
      const secretsDir = `../sandbox/secrets/${tenant}`;
      await writeJobFile(jobsDir, {
        tenant,
        credentialId,
        providerUrl: sandbox.url,
        secretsDir,
        signing: { ...factorFileRefs(secretsDir, credentialId), totp: { periodSec: 1 } },
      });
    }
    const jobs = await loadJobs(jobsDir);
    assert.deepEqual(jobs.map((j) => j.tenant).sort(), ['fuji', 'sakura']);

    // fuji sealed an invoice on an earlier night: its outbox already holds a file.
    const outbox = path.join(dir, 'outbox');
    const fujiEarlier = path.join(outbox, 'fuji', '2026-11-23', 'FJD-000001.pdf');
    await fs.mkdir(path.dirname(fujiEarlier), { recursive: true });
    await fs.copyFile(path.join(dir, 'inbox', 'fuji', 'pdf', 'FJD-000001.pdf'), fujiEarlier);
    const outboxBefore = await filesUnder(outbox);

    const forge = async (o: Partial<SealJobData> & { sourcePath: string }): Promise<SealJobData> => {
      const bytes = await fs.readFile(o.sourcePath);
      return {
        tenant: 'sakura',
        jobName: 'sakura-nightly',
        runId: 'forged-run',
        runDate: '2026-11-24',
        invoiceNumber: 'SKR-000001',
        sourceSha256: crypto.createHash('sha256').update(bytes).digest('hex'),
        sourceLength: bytes.length,
        exportFile: path.join(dir, 'inbox', 'sakura', 'export.csv'),
        line: 2,
        ...o,
      };
    };
    const sakuraPdf = path.join(dir, 'inbox', 'sakura', 'pdf', 'SKR-000001.pdf');
    const fujiPdf = path.join(dir, 'inbox', 'fuji', 'pdf', 'FJD-000002.pdf');
    const forged: Array<{ what: string; data: SealJobData; reason: RegExp }> = [
      {
        what: "tenant sakura with fuji's job definition (and so fuji's credential)",
        data: await forge({ jobName: 'fuji-nightly', sourcePath: sakuraPdf }),
        reason: /job names tenant sakura but job definition fuji-nightly belongs to fuji/,
      },
      {
        what: "a source in fuji's export folder",
        data: await forge({ invoiceNumber: 'SKR-000002', sourcePath: fujiPdf }),
        reason: /lies in tenant fuji's export folder or outbox; tenant sakura may not seal it/,
      },
      {
        what: "a source in fuji's outbox",
        data: await forge({ invoiceNumber: 'SKR-000003', sourcePath: fujiEarlier }),
        reason: /lies in tenant fuji's export folder or outbox; tenant sakura may not seal it/,
      },
      {
        what: 'an invoice number that climbs into fuji',
        data: await forge({ invoiceNumber: '../fuji/x', sourcePath: sakuraPdf }),
        reason: /unsafe invoice number for an outbox path: "\.\.\/fuji\/x"/,
      },
    ];

    const queue = openSealQueue(connection, prefix);
    after(() => queue.close());
    await queue.addBulk(
      forged.map((f) => ({ name: f.data.jobName, data: f.data, opts: { jobId: sealJobId(f.data) } })),
    );

    sandbox.resetStats();
    const worker = new SealWorker({
      connection,
      redis,
      prefix,
      jobs,
      logger: pino({ level: 'silent' }),
      concurrency: 8,
      threads: 1,
    });
    const failures = new Map<string, Error>();
    worker.onJob('failed', (job, err) => {
      if (job && err) failures.set(job.id ?? '', err);
    });
    const running = worker.run();
    try {
      const deadline = Date.now() + 30_000;
      while (failures.size < forged.length) {
        assert.ok(Date.now() < deadline, `only ${failures.size} of ${forged.length} forged jobs failed`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // The refusals' bookkeeping (run record, audit) is written after the event: wait until it has
      // landed (four failures in the run record, five refusals in the two audit trails), not a fixed time.
      const auditLines = async (tenant: string) => {
        let n = 0;
        for (const f of await listAuditFiles(auditDir(outbox, tenant)))
          n += (await fs.readFile(f, 'utf8')).split('\n').filter(Boolean).length;
        return n;
      };
      const landDeadline = Date.now() + 30_000;
      while (
        (await redis.llen(`${runKey(prefix, 'forged-run')}:failures`)) < forged.length ||
        (await auditLines('sakura').catch(() => 0)) + (await auditLines('fuji').catch(() => 0)) < 5
      ) {
        assert.ok(Date.now() < landDeadline, 'the refusals were recorded in the run and the audit trails');
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(await worker.contexts.all(), [], 'no signing context was even created');
    } finally {
      await worker.close();
      await running;
    }

    for (const f of forged) {
      const id = sealJobId(f.data);
      const err = failures.get(id);
      assert.ok(err instanceof UnrecoverableError, `${f.what}: failed unrecoverably (${String(err)})`);
      assert.match(err.message, f.reason, f.what);
      const job = (await queue.getJob(id))!;
      assert.equal(await job.getState(), 'failed', f.what);
      assert.equal(job.attemptsMade, 1, `${f.what}: failed at the first attempt, no retry`);
      assert.match(job.failedReason, f.reason, f.what);
    }

    // The provider saw nothing: no service token, no credential lookup, no authorisation, no signature.
    assert.deepEqual(sandbox.stats(), {
      token: 0,
      info: 0,
      credentialsInfo: 0,
      authorize: 0,
      signHash: 0,
      signatures: 0,
      errors: 0,
      timestamp: 0,
      tsa: 0,
      ocsp: 0,
      crl: 0,
    });
    assert.deepEqual(sandbox.issuedSecrets(), [], 'no access token and no SAD was issued');

    // Nothing was written under either outbox but the audit trails' refusals: the job naming fuji's
    // definition is recorded in both tenants' logs (fuji's credential was targeted, sakura was named).
    const written = (await filesUnder(outbox)).filter((f) => !outboxBefore.includes(f));
    const auditFolders = ['sakura', 'fuji'].map((t) => path.relative(outbox, auditDir(outbox, t)) + path.sep);
    assert.ok(
      written.length > 0 && written.every((f) => auditFolders.some((a) => f.startsWith(a))),
      JSON.stringify(written),
    );
    const entriesOf = async (tenant: string) =>
      (await Promise.all((await listAuditFiles(auditDir(outbox, tenant))).map((f) => fs.readFile(f, 'utf8'))))
        .join('')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const sakuraEntries = await entriesOf('sakura');
    assert.ok(sakuraEntries.every((e) => e.type === 'refusal'));
    assert.deepEqual(sakuraEntries.map((e) => String(e.invoice)).sort(), [
      '../fuji/x',
      'SKR-000001',
      'SKR-000002',
      'SKR-000003',
    ]);
    const fujiEntries = await entriesOf('fuji');
    assert.deepEqual(
      fujiEntries.map((e) => [e.type, e.invoice, e.credentialId]),
      [['refusal', 'SKR-000001', 'fuji-eseal-ec']],
    );
    assert.match(
      String(fujiEntries[0]!.reason),
      /job names tenant sakura but job definition fuji-nightly belongs to fuji/,
    );

    // The run record counts the four as failed, with their reasons.
    const reasons = (await redis.lrange(`${runKey(prefix, 'forged-run')}:failures`, 0, -1)).map(
      (s) => (JSON.parse(s) as { reason: string }).reason,
    );
    assert.equal(reasons.length, forged.length);
    forged.forEach((f) =>
      assert.ok(
        reasons.some((r) => f.reason.test(r)),
        f.what,
      ),
    );
  },
);

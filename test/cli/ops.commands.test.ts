// The ops verbs as a script runs them (`sealer` command lines, --json, run in-process): a night in
// which two invoices' PDFs went missing after enqueue fails them; `failed` lists them with kind,
// reason, attempts, file and line; once the PDFs are back, `retry` re-queues one by ID and a re-run of
// the export re-queues the other; `retry --run` then finds that one sealed since (already sealed, not
// queued); the run's counts end at every invoice sealed, none failed; pdfsig accepts the retried
// invoice's seal.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { startSandbox } from '../../src/sandbox';
import { createLogger } from '../../src/common/logger';
import { loadJobs } from '../../src/jobs';
import { openSealQueue, produceRun, readRun, runSettled, SealWorker, sealJobId } from '../../src/queue';
import { readManifest } from '../../src/outbox';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { run } from '../../src/cli/main';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { nssDbWithRoot, pdfsig } from '../helpers/pdfsig';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'failed lists the failed invoices; retry re-queues them once, reports one sealed since, and the counts follow',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { url, redis, prefix, connection } = await testRedis();
    const sandbox = await startSandbox({
      totpPeriodSec: 1,
      dataDir: path.join(dir, 'sandbox'),
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    after(() => sandbox.close());
    await writeSampleExport({
      dir: path.join(dir, 'inbox'),
      tenantName: 'Fuji Denki K.K.',
      invoicePrefix: 'FJ',
      count: 6,
      encoding: 'utf8',
    });
    const secrets = path.join(dir, 'sandbox', 'secrets', 'fuji');
    const jobsDir = path.join(dir, 'jobs');
    await fs.mkdir(jobsDir);
    await fs.writeFile(
      path.join(jobsDir, 'fuji.json'),
      JSON.stringify({
        name: 'fuji-nightly',
        cron: '30 2 * * *',
        tenant: 'fuji',
        export: { folder: '../inbox', columns: SAMPLE_COLUMNS },
        signing: {
          providerUrl: sandbox.url,
          clientId: 'fuji-app',
          clientSecret: `file:${secrets}/client-secret`,
          credentialId: 'fuji-eseal-ec',
          pin: `file:${secrets}/fuji-eseal-ec.pin`,
          totpSecret: `file:${secrets}/fuji-eseal-ec.totp`,
          totp: { periodSec: 1 },
          batchSize: 3,
        },
        outbox: '../outbox',
      }),
    );
    const jobs = await loadJobs(jobsDir);
    const logger = createLogger({
      level: 'info',
      destination: pino.destination({ dest: path.join(dir, 'night.log'), sync: true }),
    });
    // The commands run in this process (as `run` lets a test do): the same parsing, exit codes and
    // output as a `sealer` process, without paying a Node start-up and module load for each of ~30 calls.
    // The Redis and prefix they read come from the environment, as they would in a shell; this file is
    // its own process, so setting them here touches no other test.
    const saved = { REDIS_URL: process.env.REDIS_URL, SEALER_PREFIX: process.env.SEALER_PREFIX };
    process.env.REDIS_URL = url;
    process.env.SEALER_PREFIX = prefix;
    after(() => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    const sealer = async (...args: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await run(['node', 'sealer', ...args, '--jobs', jobsDir], {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: (t: string) => (stderr += t) },
        logs: { write: () => undefined },
      });
      return { code, stdout, stderr };
    };
    const json = async (...args: string[]) => {
      const r = await sealer(...args, '--json');
      return { code: r.code, doc: JSON.parse(r.stdout) as Record<string, unknown>, stderr: r.stderr };
    };
    const queue = openSealQueue(connection, prefix);
    after(() => queue.close());
    /** Works the queue in this process until the runs settle. */
    const work = async (runIds: string[]) => {
      const worker = new SealWorker({ connection, redis, prefix, jobs, logger, concurrency: 8 });
      const running = worker.run();
      try {
        for (;;) {
          const counts = await Promise.all(runIds.map((id) => readRun(redis, prefix, id)));
          if (counts.every(runSettled)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await worker.close();
        await running;
      }
    };

    // The night: enqueued with every PDF, then two are moved away before a worker reads them.
    const pdfDir = path.join(dir, 'inbox', 'pdf');
    const produced = await produceRun(jobs[0]!, { queue, redis, prefix, logger });
    const runId = produced.runId;
    assert.equal(produced.totals.enqueued, 6);
    for (const inv of ['FJ-000005', 'FJ-000006'])
      await fs.rename(path.join(pdfDir, `${inv}.pdf`), path.join(dir, `${inv}.pdf`));
    await work([runId]);

    const failed = await json('failed');
    assert.equal(failed.code, 0, failed.stderr);
    const list = failed.doc.failed as Record<string, unknown>[];
    assert.deepEqual(list.map((f) => f.invoice).sort(), ['FJ-000005', 'FJ-000006']);
    const exportFile = produced.files[0]!.file;
    for (const f of list) {
      assert.equal(f.tenant, 'fuji');
      assert.equal(f.runId, runId);
      assert.equal(f.kind, 'unsealable');
      assert.match(String(f.reason), new RegExp(`${String(f.invoice)}\\.pdf`));
      assert.equal(f.attempts, 1);
      assert.equal(f.exportFile, exportFile);
      // The sample export's header is line 1: invoice n is on line n + 1.
      assert.equal(f.line, Number(String(f.invoice).slice(3)) + 1);
    }
    const text = await sealer('failed', '--tenant', 'fuji');
    assert.match(text.stdout, /^failed: 2 invoice\(s\) in 1 run\(s\)$/m);
    assert.deepEqual((await json('failed', '--tenant', 'sakura')).doc.failed, []);

    const runs = await json('runs', '--tenant', 'fuji');
    const [summary] = runs.doc.runs as Record<string, unknown>[];
    assert.equal(summary!.runId, runId);
    assert.equal(summary!.state, 'settled');
    assert.equal(summary!.level, 'B-B');
    assert.ok(Date.parse(String(summary!.startedAt)) <= Date.parse(String(summary!.endedAt)));
    assert.equal(typeof summary!.durationSec, 'number');
    assert.deepEqual(summary!.counts, {
      queued: 6,
      sealed: 4,
      alreadySealed: 0,
      failed: 2,
      rejected: 0,
      duplicates: 0,
      rows: 6,
      awaitingApproval: 0,
      pending: 0,
    });
    assert.deepEqual((await json('runs', '--tenant', 'sakura')).doc.runs, []);
    // The run's provider calls are what the provider saw (only this run has signed so far).
    const seen = sandbox.stats();
    assert.deepEqual(summary!.calls, { signHash: seen.signHash, authorize: seen.authorize, signatures: 4 });
    assert.equal(seen.authorize, 1, 'one authorisation for the night');
    assert.match(
      (await sealer('runs', '--tenant', 'fuji')).stdout,
      /\d+ signHash call\(s\) for 4 signature\(s\), 1 authorisation\(s\)/,
    );

    // The PDFs are back. One invoice is retried by its job ID; the other by a re-run of the export.
    for (const inv of ['FJ-000005', 'FJ-000006'])
      await fs.rename(path.join(dir, `${inv}.pdf`), path.join(pdfDir, `${inv}.pdf`));
    const job6 = list.find((f) => f.invoice === 'FJ-000006')!.jobId as string;
    const retried = await json('retry', job6);
    assert.equal(retried.code, 0, retried.stderr);
    assert.deepEqual(
      (retried.doc.requeued as { invoice: string }[]).map((r) => r.invoice),
      ['FJ-000006'],
    );
    const retriedJob = await queue.getJob(job6);
    assert.equal(await retriedJob!.getState(), 'waiting');
    assert.equal(retriedJob!.attemptsMade, 0);
    // Out of the failed count at once, pending until a worker settles it.
    const between = (await json('run', runId)).doc as { counts: Record<string, number>; state: string };
    assert.equal(between.state, 'sealing');
    assert.equal(between.counts.failed, 1);
    assert.equal(between.counts.pending, 1);

    await fs.rename(produced.files[0]!.processedTo!, exportFile);
    const rerun = await produceRun(jobs[0]!, {
      queue,
      redis,
      prefix,
      logger,
      now: new Date(Date.now() + 1000),
    });
    // FJ-000006 is waiting (a duplicate); FJ-000005 failed for good, so the re-run queued it again.
    assert.equal(rerun.totals.enqueued, 1);
    assert.equal(rerun.files[0]!.requeued, 1);
    await work([runId, rerun.runId]);

    // FJ-000005 is listed failed in the first run still, but sealed since: reported, not queued.
    const job5 = list.find((f) => f.invoice === 'FJ-000005')!.jobId as string;
    const sealedSince = await json('retry', '--run', runId);
    assert.equal(sealedSince.code, 0, sealedSince.stderr);
    assert.deepEqual(sealedSince.doc.requeued, []);
    assert.deepEqual(
      (sealedSince.doc.alreadySealed as { jobId: string }[]).map((r) => r.jobId),
      [job5],
    );
    // Its job completed on the re-run and left Redis: the sealed index is what answered.
    assert.equal(await queue.getJob(job5), undefined);

    const detail = (await json('run', runId)).doc as Record<string, unknown>;
    assert.equal(detail.state, 'settled');
    assert.deepEqual(detail.failures, []);
    assert.deepEqual(
      { ...(detail.counts as object) },
      {
        queued: 6,
        sealed: 5,
        alreadySealed: 1,
        failed: 0,
        rejected: 0,
        duplicates: 0,
        rows: 6,
        awaitingApproval: 0,
        pending: 0,
      },
    );
    const runText = await sealer('run', runId);
    assert.match(
      runText.stdout,
      new RegExp(`^run ${runId}: settled, 6 queued, 5 sealed, 1 already sealed, 0 failed, `, 'm'),
    );

    const runsText = await sealer('runs');
    assert.match(
      runsText.stdout,
      new RegExp(
        `^${runId} \\(settled\\): 6 enqueued, 5 sealed, 1 already sealed, 0 failed, 0 rejected$`,
        'm',
      ),
    );
    assert.match(runsText.stdout, /^ {2}tenant fuji, level B-B, started \S+Z, ended \S+Z, took \d+\.\d s$/m);
    assert.match(runsText.stdout, /^runs: 2 shown, 0 approval\(s\) parked$/m);

    // Nothing left to retry: exit 1 and said so; an already sealed invoice by ID is reported again.
    const again = await sealer('retry', '--run', runId);
    assert.equal(again.code, 1);
    assert.match(again.stdout, /^retry: nothing to retry$/m);
    const allFailed = await sealer('retry', '--all-failed');
    assert.equal(allFailed.code, 1);
    const byId = await sealer('retry', job6);
    assert.equal(byId.code, 0, byId.stderr);
    assert.match(byId.stdout, /^already sealed fuji FJ-000006 \(job .*\): .*FJ-000006.*\.pdf$/m);
    // A sealed job is never taken back out of its run's counts.
    const still = await readRun(redis, prefix, runId);
    assert.deepEqual([still.sealed, still.alreadySealed, still.failed], [5, 1, 0]);
    const unknownId = sealJobId({ tenant: 'fuji', invoiceNumber: 'FJ-999999', sourceSha256: 'a'.repeat(64) });
    const unknown = await json('retry', job6, unknownId);
    assert.equal(unknown.code, 1);
    assert.deepEqual(unknown.doc.unknown, [unknownId]);
    assert.match((await sealer('retry', 'no-such-job')).stdout, /^unknown job no-such-job: /m);
    assert.equal((await sealer('run', 'no-such-run')).code, 1);
    assert.equal((await sealer('failed', '--run', 'no-such-run')).code, 1);

    // pause / resume: one tenant, as ops would from a shell; runs says what is paused.
    const paused = await json('pause', '--tenant', 'fuji');
    assert.equal(paused.code, 0, paused.stderr);
    assert.deepEqual(paused.doc, { action: 'pause', changed: ['fuji'], paused: ['fuji'] });
    assert.equal(await queue.forTenant('fuji').isPaused(), true);
    assert.match((await sealer('runs')).stdout, /; paused: fuji$/m);
    assert.match(
      (await sealer('pause')).stdout,
      /^pause: every tenant: nothing to pause; paused now: fuji$/m,
    );
    assert.equal((await sealer('pause', '--tenant', 'nobody')).code, 1);
    const resumed = await sealer('resume');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /^resume: every tenant: fuji resumed; paused now: none$/m);
    assert.equal(await queue.forTenant('fuji').isPaused(), false);

    // Usage errors are 2: no target, two targets, --tenant with IDs, a bad flag.
    for (const args of [
      ['retry'],
      ['retry', job6, '--all-failed'],
      ['retry', job6, '--tenant', 'fuji'],
      ['failed', '--bogus'],
    ]) {
      const r = await sealer(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /error/);
    }

    // Each invoice sealed once, in the outbox of its run date; the retried one's seal is valid to pdfsig.
    const outDir = path.join(dir, 'outbox', 'fuji', produced.runDate);
    const manifest = await readManifest(path.join(outDir, 'manifest.csv'));
    assert.deepEqual(manifest.map((r) => r.invoiceNumber).sort(), [
      'FJ-000001',
      'FJ-000002',
      'FJ-000003',
      'FJ-000004',
      'FJ-000005',
      'FJ-000006',
    ]);
    const row6 = manifest.find((r) => r.invoiceNumber === 'FJ-000006')!;
    const out = await pdfsig(path.join(outDir, row6.file), await nssDbWithRoot(sandbox.rootCertPath));
    assert.match(out, /Signature Validation: Signature is Valid\./, out);
    assert.equal(sandbox.stats().signatures, 6);
  },
);

test('the ops verbs have --help that says what they do', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const command of ['runs', 'run', 'failed', 'retry']) {
    let stdout = '';
    const code = await run(['node', 'sealer', command, '--help'], {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: () => true },
    });
    assert.equal(code, 0, command);
    assert.match(stdout, new RegExp(`Usage: sealer ${command}`));
    assert.match(stdout, /--json/);
  }
});

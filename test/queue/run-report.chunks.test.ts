// A run too large to report in one piece: its outcomes are scanned from Redis and its report's rows
// made and written a few thousand at a time. Across those chunk boundaries no invoice is lost or listed
// twice, the order stays natural (INV-2 before INV-10, then export line), and each row still says what
// its own record says: sealed with its manifest row, already sealed naming the earlier run, failed with
// its reason. Real Redis, a real outbox (sealed index and manifests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import pLimit from 'p-limit';
import { loadJobs } from '../../src/jobs';
import {
  addRunCounts,
  readRun,
  recordOutcomes,
  reportSettledRun,
  runKey,
  sealJobId,
  type OutcomeRecord,
} from '../../src/queue';
import {
  appendManifestRow,
  manifestFacts,
  readRunReportCsv,
  recordSealed,
  type RunReportSummary,
} from '../../src/outbox';
import { writeJobFile } from '../helpers/night-fixture';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const RUN = 'sakura-nightly-20261201-020000-000';
const EARLIER_RUN = 'sakura-nightly-20261130-020000-000';
const TODAY = '2026-12-01';
const EARLIER = '2026-11-30';
/** a source digest per invoice index (and a second source for the invoices exported twice) */
const source = (i: number, second = false) =>
  `${second ? 'b' : 'a'}${i.toString(16).padStart(8, '0')}`.padEnd(64, '0');

type Kind = 'sealed' | 'alreadySealed' | 'failed' | 'legacySealed' | 'legacyAlready' | 'both';

/** What each invoice of the run is: most sealed, the rest spread through the run (and its chunks). */
function kindOf(i: number): Kind {
  if (i % 9 === 4) return 'failed';
  if (i % 11 === 5) return 'alreadySealed';
  if (i % 401 === 17) return 'legacySealed';
  if (i % 409 === 19) return 'legacyAlready';
  if (i % 997 === 23) return 'both';
  return 'sealed';
}

test(
  'a report of more than two chunks of outcomes lists every invoice exactly once, in natural order, each as its record says',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix } = await testRedis();
    const jobsDir = path.join(dir, 'jobs');
    await writeJobFile(jobsDir, {
      tenant: 'sakura',
      credentialId: 'sakura-eseal-implicit',
      providerUrl: 'https://provider.invalid/csc/v2',
      secretsDir: path.join(dir, 'secrets'),
      signing: { custody: { mode: 'implicit' } },
    });
    const [job] = await loadJobs(jobsDir);
    const root = job!.outboxRoot;
    // 5,300 invoices (more than two of the report's chunks and of the outcome scans, 2,000 each), and
    // INV-<multiple of 1000> exported twice with two different PDFs (two jobs, two lines).
    const n = 5300;
    const twice = (i: number) => i % 1000 === 0;
    const invoice = (i: number) => `INV-${i}`;
    const jobOf = (i: number, second = false) =>
      sealJobId({ tenant: 'sakura', invoiceNumber: invoice(i), sourceSha256: source(i, second) });
    const lineOf = (i: number, second = false) => (second ? n + i : i + 1);

    // The outbox as the nights left it: today's folder for what this run sealed, yesterday's for what
    // an earlier run sealed; the sealed index names file and run.
    const limit = pLimit(32);
    const sealedHere = (k: Kind) => k === 'sealed' || k === 'legacySealed' || k === 'both';
    const sealedBefore = (k: Kind) => k === 'alreadySealed' || k === 'legacyAlready';
    const jobsOfRun: { i: number; second: boolean }[] = [];
    for (let i = 1; i <= n; i++) {
      jobsOfRun.push({ i, second: false });
      if (twice(i)) jobsOfRun.push({ i, second: true });
    }
    await Promise.all(
      jobsOfRun.map(({ i, second }) =>
        limit(async () => {
          const k = second ? 'sealed' : kindOf(i);
          if (!sealedHere(k) && !sealedBefore(k)) return;
          const day = sealedHere(k) ? TODAY : EARLIER;
          const runId = sealedHere(k) ? RUN : EARLIER_RUN;
          const folder = path.join(root, 'sakura', day);
          // The second PDF of an invoice exported twice lands beside the first under its own name.
          const name = second ? `${invoice(i)}-2.pdf` : `${invoice(i)}.pdf`;
          const at = new Date(Date.UTC(2026, 10, 29, 17) + i * 1000).toISOString();
          await fs.mkdir(folder, { recursive: true });
          await fs.writeFile(path.join(folder, name), `%PDF sealed ${invoice(i)}`);
          await appendManifestRow(folder, {
            invoiceNumber: invoice(i),
            file: name,
            sealedSha256: `${second ? 'f' : 'e'}${i.toString(16).padStart(8, '0')}`.padEnd(64, '0'),
            sourceSha256: source(i, second),
            signingTime: at,
            certificateSerial: `serial-${i}`,
            job: 'sakura-nightly',
            runId,
            level: 'B-LT',
            ...manifestFacts({ customer: `Customer ${i}`, amount: i * 10, issueDate: '2026-11-20' }, at),
            status: 'sealed',
          });
          await recordSealed(root, 'sakura', invoice(i), source(i, second), path.join(folder, name), runId);
        }),
      ),
    );

    // The run in Redis: outcomes by job ID (the failed ones with their failure and facts); a few jobs
    // only in the settled set of runs recorded before outcomes were kept (their facts kept for every
    // invoice), and a few in both, which the report must list once.
    const records: OutcomeRecord[] = [];
    const legacy: string[] = [];
    const legacyFacts: string[] = [];
    for (const { i, second } of jobsOfRun) {
      const k = second ? 'sealed' : kindOf(i);
      const jobId = jobOf(i, second);
      const facts = { invoice: invoice(i), line: lineOf(i, second), exportFile: '/in/sakura/invoices.csv' };
      if (k === 'legacySealed' || k === 'legacyAlready' || k === 'both') {
        legacy.push(jobId);
        legacyFacts.push(jobId, JSON.stringify({ ...facts, customer: `Customer ${i}` }));
        if (k !== 'both') continue;
      }
      records.push({
        jobId,
        outcome: k === 'failed' ? 'failed' : k === 'alreadySealed' ? 'alreadySealed' : 'sealed',
        invoice: { ...facts, customer: `Customer ${i}`, amount: i * 10, issueDate: '2026-11-20' },
        ...(k === 'failed' && {
          failure: {
            ...facts,
            reason: `invoice ${invoice(i)}: refused #${i}`,
            kind: 'refused',
            jobId,
            attempts: 2,
          },
        }),
      });
    }
    // Shuffled, so that neither Redis's order nor the order recorded is the report's.
    for (let a = records.length - 1; a > 0; a--) {
      const b = (a * 7919) % (a + 1);
      [records[a], records[b]] = [records[b]!, records[a]!];
    }
    const total = jobsOfRun.length;
    await addRunCounts(
      redis,
      prefix,
      RUN,
      { rows: total, enqueued: total },
      {
        job: 'sakura-nightly',
        runDate: TODAY,
        state: 'produced',
        level: 'B-LT',
      },
    );
    for (let from = 0; from < records.length; from += 1000) {
      await recordOutcomes(redis, prefix, RUN, records.slice(from, from + 1000));
    }
    const key = runKey(prefix, RUN);
    await redis.sadd(`${key}:settled`, ...legacy);
    await redis.hset(`${key}:invoices`, ...legacyFacts);
    const legacyCount = legacy.filter((id) => !records.some((r) => r.jobId === id)).length;
    await redis.hincrby(key, 'sealed', legacyCount); // what those older runs counted
    await redis.hset(key, 'settledAt', '2026-11-30T19:00:00.000Z');
    assert.ok((await redis.hlen(`${key}:outcomes`)) > 2 * 2000, 'more than two scans of outcomes');

    const counts = await readRun(redis, prefix, RUN);
    const files = await reportSettledRun({
      redis,
      prefix,
      logger: pino({ level: 'silent' }),
      runId: RUN,
      counts,
      job,
    });
    assert.ok(files, 'report written');
    const rows = await readRunReportCsv(files.manifest);

    // Exactly once each, in natural order of invoice, then export line.
    const expected = [...jobsOfRun].sort(
      (a, b) => a.i - b.i || lineOf(a.i, a.second) - lineOf(b.i, b.second),
    );
    assert.equal(rows.length, total);
    assert.deepEqual(
      rows.map((r) => `${r.invoiceNumber}@${r.line}`),
      expected.map(({ i, second }) => `${invoice(i)}@${lineOf(i, second)}`),
    );
    assert.equal(new Set(rows.map((r) => `${r.invoiceNumber}@${r.line}`)).size, total, 'no row twice');

    for (const [pos, r] of rows.entries()) {
      const { i, second } = expected[pos]!;
      const k = second ? 'sealed' : kindOf(i);
      const what = `${r.invoiceNumber} line ${r.line} (${k})`;
      if (k === 'failed') {
        assert.equal(r.status, 'failed', what);
        assert.equal(r.failureKind, 'refused', what);
        assert.equal(r.failureReason, `invoice ${invoice(i)}: refused #${i}`, what);
        assert.equal(r.attempts, '2', what);
        assert.equal(r.file, '', what);
        assert.equal(r.customer, `Customer ${i}`, what);
        continue;
      }
      const name = second ? `${invoice(i)}-2.pdf` : `${invoice(i)}.pdf`;
      assert.equal(r.status, sealedHere(k) ? 'sealed' : 'already sealed', what);
      assert.equal(r.file, `${sealedHere(k) ? TODAY : EARLIER}/${name}`, what);
      assert.equal(r.sealedByRun, sealedHere(k) ? '' : EARLIER_RUN, what);
      assert.equal(r.certificateSerial, `serial-${i}`, what);
      assert.equal(
        r.sealedSha256!.slice(0, 9),
        `${second ? 'f' : 'e'}${i.toString(16).padStart(8, '0')}`,
        what,
      );
      assert.equal(r.level, 'B-LT', what);
      assert.equal(r.customer, `Customer ${i}`, what);
      assert.equal(r.exportFile, 'invoices.csv', what);
    }

    const tally = (pick: (k: Kind) => boolean) =>
      jobsOfRun.filter(({ i, second }) => pick(second ? 'sealed' : kindOf(i))).length;
    const summary = JSON.parse(await fs.readFile(files.summary, 'utf8')) as RunReportSummary;
    assert.deepEqual(summary.listed, {
      sealed: tally(sealedHere),
      alreadySealed: tally(sealedBefore),
      failed: tally((k) => k === 'failed'),
      rejects: 0,
    });
    assert.equal(summary.listed.sealed + summary.listed.alreadySealed + summary.listed.failed, total);
    for (const k of ['failed', 'alreadySealed', 'legacySealed', 'legacyAlready', 'both'] as const) {
      assert.ok(tally((x) => x === k) > 0, `the run has ${k} invoices`);
    }
    assert.deepEqual((await fs.readdir(files.dir)).sort(), ['manifest.csv', 'rejects.csv', 'summary.json']);
  },
);

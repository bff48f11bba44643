// The worker keeps finance's archive as it delivers: after a real night every sealed invoice is in the
// index with the export's customer, amount and issue date, `sealer archive search` finds them by each
// field, the index is on disk (read by another process after the worker stopped), and `sealer archive
// reindex` rebuilds it from the manifests when it is lost.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { loadJobs } from '../../src/jobs';
import { defaultArchiveFile } from '../../src/archive';
import { readManifest } from '../../src/outbox';
import { runNight } from '../../src/queue';
import { writeSampleExport } from '../../src/demo/sample-exports';
import { sealerInProcess } from '../helpers/sealer-in-process';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { startTestSandbox, writeImplicitSakuraJob, writeTenantExport } from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const execFileP = promisify(execFile);
const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

interface Found {
  total: number;
  rows: {
    invoiceNumber: string;
    customer: string;
    amount: number;
    issueDate?: string;
    file: string;
    level: string;
  }[];
}

test(
  'the worker indexes what it delivers; search and reindex from the command line',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, { batchSize: 8 });
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 12);
    const jobs = await loadJobs(jobsDir);
    const night = await runNight({ jobs, connection, redis, prefix, logger: pino({ level: 'silent' }) });
    const run = night.runs[0]!;
    assert.equal(run.counts.sealed, 12);

    // What finance's manifest says of each invoice is what the index says.
    const outbox = path.join(dir, 'outbox');
    const manifest = await readManifest(path.join(outbox, 'sakura', run.produced.runDate, 'manifest.csv'));
    assert.equal(manifest.length, 12);
    // The index's default place, beside the outbox: the child's environment says so, and so must this
    // process's for the commands run in it.
    const env = { ...process.env, SEALER_ARCHIVE: '' };
    process.env.SEALER_ARCHIVE = '';
    const searchArgs = (args: string[]) => [
      'archive',
      'search',
      '--tenant',
      'sakura',
      '--jobs',
      jobsDir,
      '--json',
      ...args,
    ];
    // The first search is another process reading the index from disk after the worker stopped; the
    // others run the same command in this process.
    const all = JSON.parse(
      (await execFileP(process.execPath, [CLI, ...searchArgs([])], { env })).stdout,
    ) as Found;
    const sealer = async (args: string[]) => {
      const r = await sealerInProcess(args);
      assert.equal(r.code, 0, `sealer ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const search = async (...args: string[]): Promise<Found> =>
      JSON.parse(await sealer(searchArgs(args))) as Found;
    assert.equal(all.total, 12);
    for (const m of manifest) {
      const r = all.rows.find((x) => x.invoiceNumber === m.invoiceNumber);
      assert.ok(r, `${m.invoiceNumber} is indexed`);
      assert.equal(r.customer, m.customer);
      assert.equal(r.amount, Number(m.amount));
      assert.equal(r.issueDate, m.issueDate);
      assert.equal(r.level, 'B-B');
      assert.equal(r.file, path.join(outbox, 'sakura', run.produced.runDate, m.file));
    }

    // Each field alone and combined gives exactly the invoices the manifest says should match.
    const expect = (pick: (m: (typeof manifest)[number]) => boolean) =>
      manifest
        .filter(pick)
        .map((m) => m.invoiceNumber)
        .sort();
    const got = (f: Found) => f.rows.map((r) => r.invoiceNumber).sort();
    const customer = manifest[0]!.customer!;
    const part = [...customer].slice(1, 3).join('');
    assert.deepEqual(
      got(await search('--customer', part)),
      expect((m) => m.customer!.includes(part)),
    );
    const amounts = manifest.map((m) => Number(m.amount)).sort((a, b) => a - b);
    const [lo, hi] = [amounts[3]!, amounts[8]!];
    assert.deepEqual(
      got(await search('--min', String(lo), '--max', String(hi))),
      expect((m) => Number(m.amount) >= lo && Number(m.amount) <= hi),
    );
    const date = manifest[0]!.issueDate!;
    assert.deepEqual(
      got(await search('--from', date, '--to', date)),
      expect((m) => m.issueDate === date),
    );
    assert.deepEqual(got(await search('--to', '2000-01-01')), []);
    assert.deepEqual(
      got(await search('--customer', part, '--min', String(lo), '--from', date)),
      expect((m) => m.customer!.includes(part) && Number(m.amount) >= lo && m.issueDate! >= date),
    );
    // A bad query is a usage error naming the field.
    const badQuery = await sealerInProcess(searchArgs(['--from', '2026-02-30']));
    assert.equal(badQuery.code, 2);
    assert.match(badQuery.stderr, /issueDateFrom/);

    // The index lost: reindex rebuilds it from the manifests.
    await fs.rm(path.dirname(defaultArchiveFile(outbox)), { recursive: true });
    const reindexed = await sealer(['archive', 'reindex', '--jobs', jobsDir]);
    assert.match(reindexed, /^archive reindex: 12 invoice\(s\) indexed$/m);
    assert.deepEqual(got(await search()), got(all));
    const again = await sealer(['archive', 'reindex', '--jobs', jobsDir]);
    assert.match(again, /12 invoice\(s\) indexed/);
    assert.equal((await search()).total, 12, 'reindexing again adds nothing');

    // An archive that cannot be written does not fail delivered invoices: they are sealed, and the index
    // catches up with a reindex once it is back.
    await writeSampleExport({
      dir: path.join(dir, 'inbox', 'sakura'),
      tenantName: 'Sakura Shoji K.K.',
      invoicePrefix: 'SKX',
      count: 5,
      encoding: 'utf8',
      exportName: 'later.csv',
    });
    const later = await runNight({
      jobs,
      connection,
      redis,
      prefix,
      logger: pino({ level: 'silent' }),
      env: { ...process.env, SEALER_ARCHIVE: '/dev/null/archive.sqlite' },
      now: new Date(Date.now() + 1000),
    });
    assert.deepEqual([later.runs[0]!.counts.sealed, later.runs[0]!.counts.failed], [5, 0]);
    assert.equal((await search()).total, 12, 'not indexed while the archive was unreachable');
    await sealer(['archive', 'reindex', '--jobs', jobsDir]);
    assert.equal((await search()).total, 17);
  },
);

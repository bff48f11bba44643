// Not a test: what building one run's report costs, alone, at N invoices. `setup` makes a run as a
// night leaves it (a date folder's manifest and the sealed index in an outbox, the run's outcomes,
// failures and failed invoices' facts in Redis under a prefix of its own), `report` writes the run's
// report in this process (reportSettledRun, as the worker does when the run settles) and prints its
// time and memory, `clean` removes the folder and the prefix. `report` can be run by another build of
// the same script (another checkout's dist) against the same setup, to compare code before and after.
// node --test runs every .js under test/, so it only runs when asked:
//   SEALER_BENCH=1 node dist/test/queue/bench.run-report.js setup /tmp/rr 200000 [--failed 0.01]
//     [--already 0.01] [--order sealed|random]
//   SEALER_BENCH=1 node dist/test/queue/bench.run-report.js report /tmp/rr [--keep manifest-copy.csv]
//   SEALER_BENCH=1 node dist/test/queue/bench.run-report.js clean /tmp/rr
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import pLimit from 'p-limit';
import { connectRedis, deleteKeysByPrefix } from '../../src/common/redis';
import { toJst, toUtc } from '../../src/common/japan-time';
import type { JobDefinition } from '../../src/jobs';
import { csvRecord, MANIFEST_COLUMNS, recordSealed, type ManifestRow } from '../../src/outbox';
import { addRunCounts, readRun, recordOutcomes, reportSettledRun, type OutcomeRecord } from '../../src/queue';

interface Setup {
  prefix: string;
  runId: string;
  root: string;
  tenant: string;
  n: number;
}

const TENANT = 'bench';
const RUN_DATE = '2026-12-01';
const EXPORT = 'invoices.csv';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** A digest of `i` (64 hex characters). */
function hex(i: number, salt: string): string {
  return (salt + i.toString(16).padStart(16, '0')).padEnd(64, 'a').slice(0, 64);
}

function job(root: string, dir: string): JobDefinition {
  return {
    name: 'bench-nightly',
    tenant: TENANT,
    outboxRoot: root,
    exportFolder: path.join(dir, 'export'),
  } as unknown as JobDefinition;
}

async function setup(dir: string, n: number): Promise<void> {
  const failedShare = Number(option('--failed', '0.01'));
  const alreadyShare = Number(option('--already', '0.01'));
  const order = option('--order', 'sealed');
  const root = path.join(dir, 'outbox');
  const runId = `bench-nightly-20261201-020000-000`;
  const earlierRun = `bench-nightly-20261130-020000-000`;
  const prefix = `sealer-bench-report-${process.pid}`;
  const redis = connectRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const invoice = (i: number) => `BENCH-${String(i).padStart(6, '0')}`;
  // Every (1 / share)-th invoice, spread through the run.
  const every = (share: number, i: number, at: number) => share > 0 && i % Math.round(1 / share) === at;
  const kind = (i: number): 'sealed' | 'alreadySealed' | 'failed' =>
    every(failedShare, i, 7) ? 'failed' : every(alreadyShare, i, 3) ? 'alreadySealed' : 'sealed';
  // The order the manifest lists them in: as a night seals them (128 in hand, so a little shuffled),
  // or at random.
  const listed = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = listed.length - 1; i > 0; i--) {
    const j =
      order === 'random'
        ? Math.floor(Math.random() * (i + 1))
        : Math.max(0, i - Math.floor(Math.random() * 128));
    [listed[i], listed[j]] = [listed[j]!, listed[i]!];
  }
  const t0 = Date.now();
  const dayDir = path.join(root, TENANT, RUN_DATE);
  const earlierDir = path.join(root, TENANT, '2026-11-30');
  await fs.mkdir(dayDir, { recursive: true });
  await fs.mkdir(earlierDir, { recursive: true });
  const lines = {
    [dayDir]: ['\uFEFF' + csvRecord(MANIFEST_COLUMNS)],
    [earlierDir]: ['\uFEFF' + csvRecord(MANIFEST_COLUMNS)],
  };
  for (const i of listed) {
    const k = kind(i);
    if (k === 'failed') continue;
    const at = new Date(Date.UTC(2026, 10, 30, 17, 0, 0) + i * 10).toISOString();
    const row: ManifestRow = {
      invoiceNumber: invoice(i),
      file: `${invoice(i)}.pdf`,
      sealedSha256: hex(i, 'e'),
      sourceSha256: hex(i, 'c'),
      signingTime: at,
      certificateSerial: '4f1d2a9c0b7e6d5c4b3a2918',
      job: 'bench-nightly',
      runId: k === 'sealed' ? runId : earlierRun,
      level: 'B-B',
      customer: `株式会社ベンチ商事 ${i % 977}`,
      amount: String((i * 37) % 1_000_000),
      issueDate: '2026-11-28',
      sealedAtJst: toJst(at),
      sealedAtUtc: toUtc(at),
      status: 'sealed',
    };
    lines[k === 'sealed' ? dayDir : earlierDir]!.push(csvRecord(MANIFEST_COLUMNS.map((c) => row[c] ?? '')));
  }
  for (const [d, l] of Object.entries(lines)) await fs.writeFile(path.join(d, 'manifest.csv'), l.join(''));
  const limit = pLimit(64);
  await Promise.all(
    listed
      .filter((i) => kind(i) !== 'failed')
      .map((i) =>
        limit(() =>
          recordSealed(
            root,
            TENANT,
            invoice(i),
            hex(i, 'c'),
            path.join(kind(i) === 'sealed' ? dayDir : earlierDir, `${invoice(i)}.pdf`),
            kind(i) === 'sealed' ? runId : earlierRun,
          ),
        ),
      ),
  );
  const t1 = Date.now();
  await addRunCounts(
    redis,
    prefix,
    runId,
    { rows: n, enqueued: n },
    {
      job: 'bench-nightly',
      runDate: RUN_DATE,
      startedAt: '2026-11-30T17:00:00.000Z',
      state: 'produced',
      level: 'B-B',
    },
  );
  for (let from = 0; from < listed.length; from += 2000) {
    const records: OutcomeRecord[] = listed.slice(from, from + 2000).map((i) => {
      const k = kind(i);
      const jobId = `${TENANT}|${invoice(i)}|${hex(i, 'c')}`;
      const facts = { invoice: invoice(i), line: i + 1, exportFile: `/in/${EXPORT}` };
      return {
        jobId,
        outcome: k,
        invoice: { ...facts, customer: `顧客 ${i}`, amount: i, issueDate: '2026-11-28' },
        ...(k === 'failed' && {
          failure: {
            ...facts,
            reason: `invoice ${invoice(i)}: the provider refused the credential (HTTP 403 invalid_request)`,
            kind: 'refused',
            jobId,
            attempts: 1,
          },
        }),
      };
    });
    await recordOutcomes(redis, prefix, runId, records);
  }
  await redis.hset(`${prefix}:run:${runId}`, 'settledAt', '2026-11-30T19:00:00.000Z');
  const s: Setup = { prefix, runId, root, tenant: TENANT, n };
  await fs.writeFile(path.join(dir, 'setup.json'), JSON.stringify(s));
  const c = await readRun(redis, prefix, runId);
  console.log(
    `setup: ${n} invoices (${c.sealed} sealed, ${c.alreadySealed} already sealed, ${c.failed} failed), ` +
      `manifest order ${order}; outbox ${((t1 - t0) / 1000).toFixed(1)} s, Redis ${((Date.now() - t1) / 1000).toFixed(1)} s; prefix ${prefix}`,
  );
  redis.disconnect();
}

async function report(dir: string): Promise<void> {
  const s = JSON.parse(await fs.readFile(path.join(dir, 'setup.json'), 'utf8')) as Setup;
  const redis = connectRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await redis.ping();
  const counts = await readRun(redis, s.prefix, s.runId);
  const logger = pino({ level: 'warn' });
  const before = process.memoryUsage();
  let peakHeap = before.heapUsed;
  let peakRss = before.rss;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed);
    peakRss = Math.max(peakRss, m.rss);
  }, 5);
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const files = await reportSettledRun({
    redis,
    prefix: s.prefix,
    logger,
    runId: s.runId,
    counts,
    job: job(s.root, dir),
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  redis.disconnect();
  if (!files) throw new Error('no report written');
  const keep = option('--keep', '');
  if (keep) await fs.copyFile(files.manifest, keep);
  const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
  const summary = JSON.parse(await fs.readFile(files.summary, 'utf8')) as { listed: unknown };
  console.log(
    `report of ${s.n}: ${seconds.toFixed(2)} s, ${((cpu.user + cpu.system) / 1000).toFixed(0)} CPU ms; ` +
      `heap used ${mb(before.heapUsed)} MB before, peak ${mb(peakHeap)} MB (sampled every 5 ms); ` +
      `RSS ${mb(before.rss)} MB before, peak ${mb(peakRss)} MB sampled, ${mb(process.resourceUsage().maxRSS * 1024)} MB maxRSS; ` +
      `listed ${JSON.stringify(summary.listed)}`,
  );
}

async function clean(dir: string): Promise<void> {
  const s = JSON.parse(await fs.readFile(path.join(dir, 'setup.json'), 'utf8')) as Setup;
  const redis = connectRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await deleteKeysByPrefix(redis, s.prefix);
  redis.disconnect();
  await fs.rm(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  if (process.env.SEALER_BENCH !== '1') return;
  const [mode, dir, n] = process.argv.slice(2);
  if (!dir) throw new Error('usage: setup|report|clean <dir> [N]');
  if (mode === 'setup') await setup(path.resolve(dir), Number(n ?? 200_000));
  else if (mode === 'report') await report(path.resolve(dir));
  else if (mode === 'clean') await clean(path.resolve(dir));
  else throw new Error(`unknown mode ${mode}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

// Not a test: how much Redis a night costs. N invoices are produced into a redis-server of the script's
// own (so INFO memory speaks for this night alone), then sealed against the sandbox; prints used_memory
// with everything queued, the server's peak, what is left when the run has settled, and per key kind.
// node --test runs every .js under test/, so it only runs when asked:
//   SEALER_BENCH=1 SEALER_BENCH_N=20000 node dist/test/queue/bench.redis-memory.js
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { Redis } from 'ioredis';
import { connectRedis, redisAnswers } from '../../src/common/redis';
import { loadJobs } from '../../src/jobs';
import { startSandbox } from '../../src/sandbox';
import { openSealQueues, produceRun, readRun, runSettled, SealWorker } from '../../src/queue';
import { writeJobFile, writeTenantExport } from '../helpers/night-fixture';

async function freePort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function memory(redis: Redis): Promise<{ used: number; peak: number }> {
  const info = await redis.info('memory');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
  return { used: field('used_memory'), peak: field('used_memory_peak') };
}

/** Bytes (MEMORY USAGE) and keys under the prefix, by kind of key. */
async function byKind(redis: Redis, prefix: string): Promise<Map<string, { keys: number; bytes: number }>> {
  const kinds = new Map<string, { keys: number; bytes: number }>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const rest = key.slice(prefix.length + 1);
      const kind = rest.includes('|')
        ? 'seal job hashes'
        : rest.startsWith('run:')
          ? `run record ${rest.split(':').slice(2).join(':') || '(hash)'}`
          : rest.replace(/[^:]+$/, (last) => (/^\d+$/.test(last) ? '<n>' : last));
      const k = kinds.get(kind) ?? { keys: 0, bytes: 0 };
      k.keys++;
      k.bytes += Number(await redis.memory('USAGE', key, 'SAMPLES', '0')) || 0;
      kinds.set(kind, k);
    }
  } while (cursor !== '0');
  return kinds;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

async function main(): Promise<void> {
  if (process.env.SEALER_BENCH !== '1') return;
  const n = Number(process.env.SEALER_BENCH_N ?? 20_000);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealer-redis-memory-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  while (!(await redisAnswers(url))) await new Promise((r) => setTimeout(r, 50));
  const redis = connectRedis(url);
  const prefix = 'sealer-bench-trim';
  const logger = pino(
    { level: 'warn' },
    pino.destination({ dest: path.join(dir, 'night.log'), sync: false }),
  );
  const sandbox = await startSandbox({
    totpPeriodSec: 1,
    dataDir: path.join(dir, 'sandbox'),
    logger: pino({ level: 'silent' }),
  });
  const say = (line: string) => process.stdout.write(line + '\n');
  try {
    const jobsDir = path.join(dir, 'jobs');
    await writeJobFile(jobsDir, {
      tenant: 'sakura',
      credentialId: 'sakura-eseal-implicit',
      providerUrl: sandbox.url,
      secretsDir: path.join(dir, 'sandbox', 'secrets', 'sakura'),
      signing: { custody: { mode: 'implicit' }, batchSize: 100 },
      export: { ready: { quietSec: 0 } },
    });
    const jobs = await loadJobs(jobsDir);
    const job = jobs[0]!;
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', n);
    const connection = { url, maxRetriesPerRequest: null };
    const queue = openSealQueues(connection, prefix);
    const base = await memory(redis);
    say(`redis-memory: N = ${n}, baseline used_memory ${mb(base.used)}`);
    const produced = await produceRun(job, { queue, redis, prefix, logger });
    const queued = await memory(redis);
    say(
      `queued:  ${produced.totals.enqueued} enqueued, used_memory ${mb(queued.used - base.used)} above baseline = ` +
        `${((queued.used - base.used) / n).toFixed(0)} B/invoice`,
    );
    for (const [kind, k] of await byKind(redis, prefix))
      say(`  ${kind}: ${k.keys} keys, ${mb(k.bytes)} (${(k.bytes / n).toFixed(0)} B/invoice)`);
    const worker = new SealWorker({ connection, redis, prefix, jobs, logger, concurrency: 64 });
    const running = worker.run();
    let peakSeen = queued.used;
    for (;;) {
      const c = await readRun(redis, prefix, produced.runId);
      peakSeen = Math.max(peakSeen, (await memory(redis)).used);
      if (runSettled(c) && c.settledAt !== undefined) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    await worker.close();
    await running;
    const c = await readRun(redis, prefix, produced.runId);
    const end = await memory(redis);
    say(
      `settled: ${c.sealed} sealed, ${c.failed} failed; peak used_memory ${mb(Math.max(peakSeen, end.peak) - base.used)} ` +
        `above baseline (${((Math.max(peakSeen, end.peak) - base.used) / n).toFixed(0)} B/invoice); ` +
        `left ${mb(end.used - base.used)} (${((end.used - base.used) / n).toFixed(0)} B/invoice)`,
    );
    for (const [kind, k] of await byKind(redis, prefix))
      say(`  ${kind}: ${k.keys} keys, ${mb(k.bytes)} (${(k.bytes / n).toFixed(0)} B/invoice)`);
    // A re-run of the same export: what the producer counts once the jobs are (or are not) in Redis.
    const moved = produced.files[0]?.processedTo;
    if (moved) await fs.rename(moved, path.join(dir, 'inbox', 'sakura', 'invoices.csv'));
    const again = await produceRun(job, { queue, redis, prefix, logger, now: new Date(Date.now() + 60_000) });
    say(`re-run:  ${JSON.stringify(again.totals)}`);
    await queue.close();
  } finally {
    await sandbox.close();
    redis.disconnect();
    server.kill('SIGTERM');
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

// `sealer bench`: seals N generated invoices through the whole path (producer, BullMQ on Redis, worker
// with its thread pool, a sandbox provider in its own process on loopback) and compares with a floor
// that only reads, hashes and writes a copy of each input, in the same process.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import pino from 'pino';
import { createLogger } from '../common/logger';
import { connectRedis, deleteKeysByPrefix, resolveRedis } from '../common/redis';
import { loadJobFile } from '../jobs';
import { runNight } from '../queue';
import { writeSampleExport, SAMPLE_COLUMNS } from './sample-exports';
import { ProgressLine } from './progress-line';

import { BENCH_LEVELS, type BenchLevel } from './bench-levels';
export { BENCH_LEVELS, type BenchLevel };

export interface BenchOptions {
  invoices: number;
  concurrency: number;
  batchSize: number;
  latencyMs: number;
  /** PAdES levels to seal at, one night each (timestamps from the sandbox's signatures/timestamp) */
  levels?: readonly BenchLevel[];
  /** sandbox TSA latency per timestamp (ms) */
  tsaLatencyMs?: number;
}

interface LevelFigures {
  level: BenchLevel;
  sealed: number;
  seconds: number;
  cpuMs: number;
  signHashCalls: number;
  authorisations: number;
  timestampRequests: number;
  ocsp: number;
  crl: number;
  bytesAdded: number;
}

interface Measure {
  seconds: number;
  cpuMs: number;
}

async function measure<T>(fn: () => Promise<T>): Promise<Measure & { value: T }> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { value, seconds, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function startSandboxProcess(
  dataDir: string,
  latencyMs: number,
  tsaLatencyMs: number,
): Promise<{ url: string; child: ChildProcess }> {
  const cli = path.join(__dirname, '..', 'cli', 'main.js');
  const child = spawn(
    process.execPath,
    [
      cli,
      'sandbox',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--latency-ms',
      String(latencyMs),
      '--totp-period',
      '1',
      '--tsa-latency-ms',
      String(tsaLatencyMs),
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'warn' },
    },
  );
  const lines = readline.createInterface({ input: child.stderr! });
  const said: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) =>
      reject(new Error(`sandbox exited with ${code}: ${said.slice(-3).join(' | ')}`)),
    );
    lines.on('line', (line) => {
      said.push(line);
      const m = /listening at (\S+)/.exec(line);
      if (m) resolve(m[1]!);
    });
  });
  return { url, child };
}

async function floor(files: string[], outDir: string, concurrency: number): Promise<void> {
  await fs.mkdir(outDir, { recursive: true });
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < files.length) {
        const file = files[next++]!;
        const bytes = await fs.readFile(file);
        crypto.createHash('sha256').update(bytes).digest();
        const handle = await fs.open(path.join(outDir, path.basename(file)), 'w');
        await handle.writeFile(bytes);
        await handle.sync();
        await handle.close();
      }
    }),
  );
}

export async function runBench(o: BenchOptions): Promise<void> {
  const say = (line: string) => process.stdout.write(line + '\n');
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sealer-bench-'));
  const prefix = `sealer-bench-${process.pid}`;
  const endpoint = await resolveRedis({ allowPrivate: true });
  const redis = connectRedis(endpoint.url);
  let sandbox: { url: string; child: ChildProcess } | undefined;
  try {
    say(
      `bench: ${o.invoices} invoices, concurrency ${o.concurrency}, batch ${o.batchSize}, sandbox latency ${o.latencyMs} ms, ${os.availableParallelism()} cores, work dir ${work}`,
    );
    const inbox = path.join(work, 'inbox');
    const gen = await measure(() =>
      writeSampleExport({
        dir: inbox,
        tenantName: 'Bench K.K.',
        invoicePrefix: 'BEN',
        count: o.invoices,
        encoding: 'utf8',
      }),
    );
    say(`generated ${o.invoices} distinct invoice PDFs in ${gen.seconds.toFixed(1)} s`);
    const pdfs = (await fs.readdir(path.join(inbox, 'pdf'))).map((f) => path.join(inbox, 'pdf', f));

    sandbox = await startSandboxProcess(path.join(work, 'sandbox'), o.latencyMs, o.tsaLatencyMs ?? 0);
    const logger = createLogger({
      level: 'warn',
      destination: pino.destination({ dest: path.join(work, 'bench.log'), sync: false }),
    });
    const figures: LevelFigures[] = [];
    for (const level of o.levels ?? ['B-B']) {
      // A fresh copy of the export, outbox and key prefix per level: each night seals every invoice.
      const name = level.toLowerCase().replace('-', '');
      await fs.cp(inbox, path.join(work, `inbox-${name}`), { recursive: true });
      const f = await sealAtLevel(o, level, {
        work,
        name,
        sandboxUrl: sandbox.url,
        redisUrl: endpoint.url,
        redis,
        prefix: `${prefix}-${name}`,
        logger,
      });
      figures.push(f);
      if (f.sealed !== o.invoices) {
        say(`WARNING: ${level}: ${f.sealed} of ${o.invoices} sealed; see ${work}/bench.log`);
      }
      say(
        `sealed ${level.padEnd(5)}: ${f.sealed} invoices in ${f.seconds.toFixed(2)} s = ${(f.sealed / f.seconds).toFixed(0)} invoices/s, ` +
          `${(f.cpuMs / f.sealed).toFixed(2)} CPU ms/invoice; ${f.signHashCalls} signHash calls, ${f.authorisations} authorize calls, ` +
          `${f.timestampRequests} TSA calls (${(f.timestampRequests / f.sealed).toFixed(2)}/invoice), ` +
          `${f.ocsp} OCSP + ${f.crl} CRL fetches, ${(f.bytesAdded / 1024).toFixed(1)} KB added/invoice`,
      );
    }
    const base = await measure(() => floor(pdfs, path.join(work, 'floor'), 16));
    const floorRate = o.invoices / base.seconds;
    say(
      `floor:    ${o.invoices} read+SHA-256+write copies in ${base.seconds.toFixed(2)} s = ${floorRate.toFixed(0)} invoices/s, ${(base.cpuMs / o.invoices).toFixed(3)} CPU ms/invoice`,
    );
    for (const f of figures) {
      const rate = f.sealed / f.seconds;
      // One summary line per level; with one level it is the run's summary, as before levels existed.
      say(
        `bench${figures.length > 1 ? ` ${f.level}` : ''}: ${f.sealed} sealed, ${rate.toFixed(0)} invoices/s, ` +
          `${(f.cpuMs / f.sealed).toFixed(2)} CPU ms/invoice, floor ratio ${(floorRate / rate).toFixed(1)}x` +
          (f.level === 'B-B'
            ? ''
            : `, level ${f.level}, ${f.timestampRequests} TSA calls, ${f.ocsp + f.crl} revocation fetches`),
      );
    }
  } finally {
    sandbox?.child.kill('SIGTERM');
    for (const level of o.levels ?? ['B-B']) {
      await deleteKeysByPrefix(redis, `${prefix}-${level.toLowerCase().replace('-', '')}`);
    }
    await redis.quit();
    await endpoint.release();
    await fs.rm(work, { recursive: true, force: true });
  }
}

async function sealAtLevel(
  o: BenchOptions,
  level: BenchLevel,
  env: {
    work: string;
    name: string;
    sandboxUrl: string;
    redisUrl: string;
    redis: ReturnType<typeof connectRedis>;
    prefix: string;
    logger: ReturnType<typeof createLogger>;
  },
): Promise<LevelFigures> {
  const { work, name } = env;
  const secrets = path.join(work, 'sandbox', 'secrets', 'sakura');
  const jobFile = path.join(work, `bench-${name}.json`);
  await fs.writeFile(
    jobFile,
    JSON.stringify({
      name: `bench-${name}`,
      cron: '0 2 * * *',
      tenant: 'sakura',
      // The copy was just written: no quiet time to wait out.
      export: { folder: `inbox-${name}`, encoding: 'utf8', ready: { quietSec: 0 }, columns: SAMPLE_COLUMNS },
      signing: {
        providerUrl: env.sandboxUrl,
        clientId: 'sakura-app',
        clientSecret: `file:${secrets}/client-secret`,
        credentialId: 'sakura-eseal-rsa',
        pin: `file:${secrets}/sakura-eseal-rsa.pin`,
        totpSecret: `file:${secrets}/sakura-eseal-rsa.totp`,
        // The sandbox runs 1 s TOTP steps so that re-authorising every `multisign` signatures does not
        // wait out 30 s steps (a one-time code is accepted once); see the README.
        totp: { periodSec: 1 },
        batchSize: o.batchSize,
        level,
        ...(level === 'B-B' ? {} : { trustRoots: [path.join(work, 'sandbox', 'ca', 'root.pem')] }),
      },
      outbox: `outbox-${name}`,
    }),
  );
  const job = await loadJobFile(jobFile);
  const progress = new ProgressLine(`sealing ${level}`);
  const sealed = await measure(() =>
    runNight({
      jobs: [job],
      connection: { url: env.redisUrl, maxRetriesPerRequest: null },
      redis: env.redis,
      prefix: env.prefix,
      logger: env.logger,
      concurrency: o.concurrency,
      onProgress: (d, t) => progress.update(d, t),
    }),
  );
  progress.done();
  const night = sealed.value;
  const run = night.runs[0]!;
  const cred = night.credentials[0];
  // Bytes each sealed file has beyond its input, from the outbox itself.
  const outDir = path.join(work, `outbox-${name}`, 'sakura', run.produced.runDate);
  let added = 0;
  let files = 0;
  const sealedFiles = run.counts.sealed > 0 ? await fs.readdir(outDir) : [];
  if (run.counts.sealed === 0) {
    process.stdout.write(`${level}: nothing sealed; failures: ${JSON.stringify(run.failures.slice(0, 3))}\n`);
  }
  for (const f of sealedFiles) {
    if (!f.endsWith('.pdf')) continue;
    const [out, input] = await Promise.all([
      fs.stat(path.join(outDir, f)),
      fs.stat(path.join(work, `inbox-${name}`, 'pdf', f)),
    ]);
    added += out.size - input.size;
    files++;
  }
  return {
    level,
    sealed: run.counts.sealed,
    seconds: sealed.seconds,
    cpuMs: sealed.cpuMs,
    signHashCalls: cred?.signHashCalls ?? 0,
    authorisations: cred?.authorisations ?? 0,
    timestampRequests: cred?.timestampRequests ?? 0,
    ocsp: night.revocation.ocspRequests,
    crl: night.revocation.crlRequests,
    bytesAdded: files ? added / files : 0,
  };
}

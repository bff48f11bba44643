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

export interface BenchOptions {
  invoices: number;
  concurrency: number;
  batchSize: number;
  latencyMs: number;
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

    sandbox = await startSandboxProcess(path.join(work, 'sandbox'), o.latencyMs);
    const secrets = path.join(work, 'sandbox', 'secrets', 'sakura');
    const jobFile = path.join(work, 'bench.json');
    await fs.writeFile(
      jobFile,
      JSON.stringify({
        name: 'bench',
        cron: '0 2 * * *',
        tenant: 'sakura',
        export: { folder: 'inbox', encoding: 'utf8', columns: SAMPLE_COLUMNS },
        signing: {
          providerUrl: sandbox.url,
          clientId: 'sakura-app',
          clientSecret: `file:${secrets}/client-secret`,
          credentialId: 'sakura-eseal-rsa',
          pin: `file:${secrets}/sakura-eseal-rsa.pin`,
          totpSecret: `file:${secrets}/sakura-eseal-rsa.totp`,
          // The sandbox runs 1 s TOTP steps so that re-authorising every `multisign` signatures does not
          // wait out 30 s steps (a one-time code is accepted once); see the README.
          totp: { periodSec: 1 },
          batchSize: o.batchSize,
        },
        outbox: 'outbox',
      }),
    );
    const job = await loadJobFile(jobFile);
    const logger = createLogger({
      level: 'warn',
      destination: pino.destination({ dest: path.join(work, 'bench.log'), sync: false }),
    });

    const progress = new ProgressLine('sealing');
    const sealed = await measure(() =>
      runNight({
        jobs: [job],
        connection: { url: endpoint.url, maxRetriesPerRequest: null },
        redis,
        prefix,
        logger,
        concurrency: o.concurrency,
        onProgress: (d, t) => progress.update(d, t),
      }),
    );
    progress.done();
    const base = await measure(() => floor(pdfs, path.join(work, 'floor'), 16));

    const night = sealed.value;
    const run = night.runs[0]!;
    const cred = night.credentials[0];
    const n = run.counts.sealed;
    if (n !== o.invoices)
      say(`WARNING: ${n} of ${o.invoices} sealed (${run.counts.failed} failed); see ${work}/bench.log`);
    const rate = n / sealed.seconds;
    const floorRate = o.invoices / base.seconds;
    say(
      `sealed:   ${n} invoices in ${sealed.seconds.toFixed(2)} s = ${rate.toFixed(0)} invoices/s, ${(sealed.cpuMs / n).toFixed(2)} CPU ms/invoice (worker process; the sandbox runs apart)`,
    );
    say(
      `          ${cred?.signHashCalls ?? 0} signHash calls, ${cred?.authorisations ?? 0} authorize calls, ${cred?.unusedSignatures ?? 0} signatures left unused`,
    );
    say(
      `floor:    ${o.invoices} read+SHA-256+write copies in ${base.seconds.toFixed(2)} s = ${floorRate.toFixed(0)} invoices/s, ${(base.cpuMs / o.invoices).toFixed(3)} CPU ms/invoice`,
    );
    say(
      `ratio:    sealing takes ${(floorRate / rate).toFixed(1)}x the floor's wall time and ${(sealed.cpuMs / n / (base.cpuMs / o.invoices)).toFixed(1)}x its CPU per invoice`,
    );
    say(
      `bench: ${n} sealed, ${rate.toFixed(0)} invoices/s, ${(sealed.cpuMs / n).toFixed(2)} CPU ms/invoice, floor ratio ${(floorRate / rate).toFixed(1)}x`,
    );
  } finally {
    sandbox?.child.kill('SIGTERM');
    await deleteKeysByPrefix(redis, prefix);
    await redis.quit();
    await endpoint.release();
    await fs.rm(work, { recursive: true, force: true });
  }
}

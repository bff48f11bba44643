// `sealer bench`: seals N generated invoices through the whole path (producer and run records in this
// process, BullMQ on Redis, SealWorker processes with their thread pools, a sandbox provider in its own
// process on loopback), then the same way as a naive integration would (one authorize and one signHash
// per invoice, one at a time), and compares with a floor that only reads, hashes and writes a copy of
// each input. Every night has its own export (distinct invoices) under one Redis prefix, so the
// credential's TOTP steps are coordinated across nights as across a night's processes.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import pino from 'pino';
import { createLogger } from '../common/logger';
import { connectRedis, deleteKeysByPrefix, resolveRedis } from '../common/redis';
import { loadJobFile } from '../jobs';
import { verifySealedPdf } from '../pades';
import { openSealQueue, produceRun, readRun, runKey, runSettled } from '../queue';
import { DEFAULT_AWAITING_SIGNATURE_PER_SLOT, WORKER_NODE_FLAGS } from '../queue/worker-defaults';
import { writeSampleExport, SAMPLE_COLUMNS } from './sample-exports';
import {
  sampleDataExportSpec,
  sampleInvoiceProfile,
  sampleRegistrationNumber,
  writeSampleDataExport,
} from './sample-data-exports';
import { ProgressLine } from './progress-line';
import { procStats, redisCpuMs, RedisMemorySampler, summarise } from './bench-figures';
import { STAGE_NAMES, type BenchWorkerReport, type BenchWorkerStart } from './bench-worker';
import { printFigures } from './bench-report';
import type {
  BenchFigures,
  BenchKey,
  BenchOptions,
  NightFigures,
  SandboxCredentialLine,
} from './bench-types';
export type { BenchFigures, BenchKey, BenchOptions, NightFigures } from './bench-types';

import { BENCH_LEVELS, type BenchLevel } from './bench-levels';
export { BENCH_LEVELS, type BenchLevel };

/** The sandbox's large-multisign credentials (its `bench` tenant), by key type. */
export const BENCH_CREDENTIALS: Record<BenchKey, string> = {
  rsa: 'bench-eseal-rsa',
  ec: 'bench-eseal-ec',
};

async function measure<T>(fn: () => Promise<T>): Promise<{ seconds: number; cpuMs: number; value: T }> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { value, seconds, cpuMs: (cpu.user + cpu.system) / 1000 };
}

interface SandboxProcess {
  url: string;
  child: ChildProcess;
  rootCertPath: string;
  credentials: Map<string, SandboxCredentialLine>;
}

async function startSandboxProcess(
  dataDir: string,
  o: { latencyMs: number; tsaLatencyMs: number; totpPeriodSec: number },
): Promise<SandboxProcess> {
  const cli = path.join(__dirname, '..', 'cli', 'main.js');
  const args = [
    cli,
    'sandbox',
    '--port',
    '0',
    '--data-dir',
    dataDir,
    '--totp-period',
    String(o.totpPeriodSec),
    '--tsa-latency-ms',
    String(o.tsaLatencyMs),
    '--bench-tenant',
  ];
  // Provider latency on every CSC call (authorize, signHash, ...), as the fault injection applies it;
  // the OAuth2 token endpoint and the PKI endpoints are not slowed.
  if (o.latencyMs > 0) args.push('--faults', `csc:latency:${o.latencyMs}ms`);
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  const lines = readline.createInterface({ input: child.stderr! });
  const said: string[] = [];
  const credentials = new Map<string, SandboxCredentialLine>();
  let url: string | undefined;
  let rootCertPath: string | undefined;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) =>
      reject(new Error(`sandbox exited with ${code}: ${said.slice(-3).join(' | ')}`)),
    );
    lines.on('line', (line) => {
      said.push(line);
      url ??= /listening at (\S+)/.exec(line)?.[1];
      rootCertPath ??= /^root certificate: (.+)$/.exec(line)?.[1];
      const c =
        /tenant (\S+): client (\S+), credential (\S+) \((\S+), SCAL\d, multisign (\d+)\); secrets in (.+)$/.exec(
          line,
        );
      if (c) {
        credentials.set(c[3]!, {
          tenant: c[1]!,
          clientId: c[2]!,
          credentialId: c[3]!,
          keyType: c[4]!,
          multisign: Number(c[5]),
          secretsDir: c[6]!,
        });
      }
      // The credential lines come last, the bench tenant's after the default ones.
      const all = Object.values(BENCH_CREDENTIALS).every((id) => credentials.has(id));
      if (url && rootCertPath && all) resolve();
    });
  });
  return { url: url!, child, rootCertPath: rootCertPath!, credentials };
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

interface Env {
  work: string;
  sandbox: SandboxProcess;
  credential: SandboxCredentialLine;
  redisUrl: string;
  redis: ReturnType<typeof connectRedis>;
  prefix: string;
  totpPeriodSec: number;
}

export async function runBench(o: BenchOptions): Promise<BenchFigures> {
  const say = o.out ?? ((line: string) => process.stdout.write(line + '\n'));
  const work = o.workDir
    ? path.resolve(o.workDir)
    : await fs.mkdtemp(path.join(os.tmpdir(), 'sealer-bench-'));
  await fs.mkdir(work, { recursive: true });
  const prefix = `sealer-bench-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const endpoint = await resolveRedis({ allowPrivate: true });
  const redis = connectRedis(endpoint.url);
  const totpPeriodSec = o.totpPeriodSec ?? 30;
  const workers = o.workers ?? 1;
  const naiveCount = Math.min(o.naive ?? 3, o.invoices);
  let sandbox: SandboxProcess | undefined;
  try {
    const startedAt = new Date().toISOString();
    sandbox = await startSandboxProcess(path.join(work, 'sandbox'), {
      latencyMs: o.latencyMs,
      tsaLatencyMs: o.tsaLatencyMs ?? 0,
      totpPeriodSec,
    });
    const credentialId = o.credential ?? BENCH_CREDENTIALS[o.key ?? 'rsa'];
    const credential = sandbox.credentials.get(credentialId);
    if (!credential) {
      throw new Error(
        `the sandbox has no credential ${credentialId}; it has ${[...sandbox.credentials.keys()].join(', ')}`,
      );
    }
    say(
      `bench: ${o.invoices} invoices, ${workers} worker process${workers === 1 ? '' : 'es'} × concurrency ${o.concurrency} (+${o.awaitingSignature ?? DEFAULT_AWAITING_SIGNATURE_PER_SLOT * o.concurrency} awaiting signature), batch ${o.batchSize}, ` +
        `credential ${credential.credentialId} (${credential.keyType}, multisign ${credential.multisign}), TOTP step ${totpPeriodSec} s, ` +
        `provider latency ${o.latencyMs} ms/call, ${os.availableParallelism()} cores, load ${os
          .loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}, work dir ${work}`,
    );
    const env: Env = { work, sandbox, credential, redisUrl: endpoint.url, redis, prefix, totpPeriodSec };
    const nights: NightFigures[] = [];
    // The floor copies the first night's PDFs: its inputs, or (data input) what it sealed.
    let firstPdfs: string | undefined;
    for (const level of o.levels ?? ['B-B']) {
      const name = level.toLowerCase().replace('-', '');
      const f = await night(o, env, { name, level, mode: 'worker', workers, invoices: o.invoices, say });
      firstPdfs ??=
        o.input === 'data'
          ? path.join(work, `outbox-${name}`, credential.tenant, f.runDate)
          : path.join(work, `inbox-${name}`, 'pdf');
      nights.push(f);
      if (f.sealed !== f.invoices) {
        say(`WARNING: ${level}: ${f.sealed} of ${f.invoices} sealed; see ${work}/bench.log`);
      }
    }
    let naive: NightFigures | undefined;
    if (naiveCount > 0) {
      naive = await night(o, env, {
        name: 'naive',
        level: 'B-B',
        mode: 'naive',
        workers: 1,
        invoices: naiveCount,
        say,
      });
    }
    // The floor reads the first night's PDFs (copies go elsewhere), in this process.
    const pdfDir = firstPdfs!;
    const pdfs = (await fs.readdir(pdfDir))
      .filter((f) => f.endsWith('.pdf'))
      .map((f) => path.join(pdfDir, f));
    const base = await measure(() => floor(pdfs, path.join(work, 'floor'), 16));
    const figures: BenchFigures = {
      startedAt,
      cores: os.availableParallelism(),
      loadAverage: os.loadavg(),
      options: Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'out')) as BenchFigures['options'],
      credential,
      nights,
      ...(naive ? { naive } : {}),
      floor: {
        seconds: base.seconds,
        rate: pdfs.length / base.seconds,
        cpuMsPerInvoice: base.cpuMs / pdfs.length,
      },
    };
    printFigures(figures, say);
    if (o.json) {
      await fs.writeFile(o.json, `${JSON.stringify(figures, null, 2)}\n`);
      say(`figures written to ${o.json}`);
    }
    const bad = [...nights, ...(naive ? [naive] : [])].filter(
      (n) => n.verified && n.verified.valid !== n.verified.files,
    );
    if (bad.length > 0)
      throw new Error(`sealed files that do not verify: ${bad.map((n) => n.name).join(', ')}`);
    return figures;
  } finally {
    sandbox?.child.kill('SIGTERM');
    await deleteKeysByPrefix(redis, prefix);
    await redis.quit();
    await endpoint.release();
    if (!o.workDir) await fs.rm(work, { recursive: true, force: true });
  }
}

interface NightPlan {
  name: string;
  level: BenchLevel;
  mode: 'worker' | 'naive';
  workers: number;
  invoices: number;
  say: (line: string) => void;
}

/** Starts one worker process and resolves once it takes jobs. */
async function startWorker(
  start: BenchWorkerStart,
): Promise<{ child: ChildProcess; report: Promise<BenchWorkerReport> }> {
  const child = fork(path.join(__dirname, 'bench-worker.js'), [], {
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    // Started as the README says to start `sealer work`.
    execArgv: [...process.execArgv, ...WORKER_NODE_FLAGS],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const report = new Promise<BenchWorkerReport>((resolve, reject) => {
    child.on('message', (m: { type?: string }) => {
      if (m.type === 'ready') ready();
      if (m.type === 'report') resolve(m as BenchWorkerReport);
    });
    child.once('exit', (code) => reject(new Error(`bench worker ${child.pid} exited with ${code}`)));
  });
  report.catch(() => undefined); // awaited by the night; a failed night kills workers it never asks
  child.send(start);
  // A worker that dies before it is ready fails the night at once rather than at the deadline.
  await Promise.race([isReady, report.then(() => undefined)]);
  return { child, report };
}

async function night(o: BenchOptions, env: Env, plan: NightPlan): Promise<NightFigures> {
  const { work, name, level } = { work: env.work, ...plan };
  const naive = plan.mode === 'naive';
  const inbox = path.join(work, `inbox-${name}`);
  const input = o.input ?? 'pdf';
  // Distinct invoice numbers per night: the nights share a queue prefix (and so the credential's
  // TOTP steps), and a job ID is tenant + invoice + content.
  const invoicePrefix = `BEN${name.toUpperCase()}`;
  const gen = await measure<unknown>(() =>
    input === 'data'
      ? writeSampleDataExport({
          dir: inbox,
          invoicePrefix,
          count: plan.invoices,
          encoding: 'utf8',
          registrationNumber: sampleRegistrationNumber(7),
        })
      : writeSampleExport({
          dir: inbox,
          tenantName: 'Bench K.K.',
          invoicePrefix,
          count: plan.invoices,
          encoding: 'utf8',
        }),
  );
  plan.say(
    `generated ${plan.invoices} distinct ${input === 'data' ? 'invoices of data (rendered in the night)' : 'invoice PDFs'} for ${name} in ${gen.seconds.toFixed(1)} s`,
  );
  const c = env.credential;
  const jobFile = path.join(work, `bench-${name}.json`);
  await fs.writeFile(
    jobFile,
    JSON.stringify({
      name: `bench-${name}`,
      cron: '0 2 * * *',
      tenant: c.tenant,
      // Just written: no quiet time to wait out.
      export: {
        folder: `inbox-${name}`,
        encoding: 'utf8',
        ready: { quietSec: 0 },
        ...(input === 'data' ? { data: sampleDataExportSpec() } : { columns: SAMPLE_COLUMNS }),
      },
      ...(input === 'data' && {
        invoice: sampleInvoiceProfile('株式会社ベンチ商事', ['〒100-0005 東京都千代田区丸の内1-1-1']),
      }),
      signing: {
        providerUrl: env.sandbox.url,
        clientId: c.clientId,
        clientSecret: `file:${c.secretsDir}/client-secret`,
        credentialId: c.credentialId,
        pin: `file:${c.secretsDir}/${c.credentialId}.pin`,
        totpSecret: `file:${c.secretsDir}/${c.credentialId}.totp`,
        totp: { periodSec: env.totpPeriodSec },
        batchSize: naive ? 1 : o.batchSize,
        // The naive integration: one authorisation (a fresh TOTP step) and one signHash per invoice.
        ...(naive ? { oneDocumentPerAuthorisation: true } : {}),
        level,
        ...(level === 'B-B' ? {} : { trustRoots: [env.sandbox.rootCertPath] }),
      },
      outbox: `outbox-${name}`,
    }),
  );
  const job = await loadJobFile(jobFile);
  const concurrency = naive ? 1 : o.concurrency;
  const awaitingSignature = naive
    ? 0
    : (o.awaitingSignature ?? DEFAULT_AWAITING_SIGNATURE_PER_SLOT * concurrency);
  const started = await Promise.all(
    Array.from({ length: plan.workers }, () =>
      startWorker({
        type: 'start',
        jobFile,
        redisUrl: env.redisUrl,
        prefix: env.prefix,
        concurrency,
        awaitingSignature,
        logFile: path.join(work, 'bench.log'),
      }),
    ),
  );
  const logger = createLogger({
    level: 'warn',
    destination: pino.destination({ dest: path.join(work, 'bench.log'), sync: false, append: true }),
  });
  const sandboxPid = env.sandbox.child.pid!;
  const memory = new RedisMemorySampler(env.redis);
  const progress = new ProgressLine(naive ? 'sealing naively' : `sealing ${level}`);
  const queue = openSealQueue({ url: env.redisUrl, maxRetriesPerRequest: null }, env.prefix);
  let runId = '';
  // The workers' peak RSS once 95 % is settled: sealing's own, before the run's report is written.
  let sealingRssKb: (number | undefined)[] | undefined;
  const sealNight = () =>
    measure(async () => {
      const produced = await produceRun(job, { queue, redis: env.redis, prefix: env.prefix, logger });
      runId = produced.runId;
      // A night of 1,000 invoices/s needs no deadline; one at one authorisation per step does.
      const deadline = Date.now() + 30 * 60_000 + (plan.invoices / (c.multisign / env.totpPeriodSec)) * 1000;
      for (;;) {
        const counts = await readRun(env.redis, env.prefix, runId);
        await memory.sample();
        const settled = counts.sealed + counts.alreadySealed + counts.failed;
        progress.update(Math.min(settled, counts.enqueued), counts.enqueued);
        if (!sealingRssKb && counts.state === 'produced' && settled >= 0.95 * counts.enqueued) {
          sealingRssKb = await Promise.all(
            started.map(async (w) => (await procStats(w.child.pid!)).maxRssKb),
          );
        }
        if (runSettled(counts)) return { produced, counts };
        if (Date.now() > deadline)
          throw new Error(`${name}: night did not settle: ${JSON.stringify(counts)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    });
  let timed: Awaited<ReturnType<typeof sealNight>>;
  let reports: BenchWorkerReport[];
  let sandbox0: Awaited<ReturnType<typeof procStats>>;
  let sandbox1: Awaited<ReturnType<typeof procStats>>;
  let redis0: number | undefined;
  let redis1: number | undefined;
  try {
    await memory.sample();
    sandbox0 = await procStats(sandboxPid);
    redis0 = await redisCpuMs(env.redis);
    timed = await sealNight();
    progress.done();
    sandbox1 = await procStats(sandboxPid);
    redis1 = await redisCpuMs(env.redis);
    for (const w of started) w.child.send({ type: 'stop' });
    reports = await Promise.all(started.map((w) => w.report));
  } finally {
    await queue.close();
    // A night that failed leaves no worker process behind.
    for (const w of started) if (w.child.exitCode === null && w.child.connected) w.child.kill('SIGTERM');
  }
  const { counts, produced } = timed.value;
  if (counts.sealed === 0) {
    const failures = await env.redis.lrange(`${runKey(env.prefix, runId)}:failures`, 0, 2);
    plan.say(`${name}: nothing sealed; failures: ${failures.join(' | ')}`);
  }
  // Bytes each sealed file has beyond its input, and (when asked) each file's verdict, from the outbox.
  const outDir = path.join(work, `outbox-${name}`, c.tenant, produced.runDate);
  const files = counts.sealed > 0 ? (await fs.readdir(outDir)).filter((f) => f.endsWith('.pdf')) : [];
  let added = 0;
  let sealedBytes = 0;
  for (const f of files) {
    const out = await fs.stat(path.join(outDir, f));
    sealedBytes += out.size;
    if (input === 'pdf') added += out.size - (await fs.stat(path.join(inbox, 'pdf', f))).size;
  }
  const verified = o.verify ? await verifyAll(outDir, files, env.sandbox.rootCertPath) : undefined;
  const sum = (pick: (r: BenchWorkerReport) => number) => reports.reduce((n, r) => n + pick(r), 0);
  const rate = counts.sealed / timed.seconds;
  const ceiling = c.multisign / env.totpPeriodSec;
  return {
    name,
    mode: plan.mode,
    level,
    workers: plan.workers,
    concurrency,
    awaitingSignature,
    batchSize: naive ? 1 : o.batchSize,
    invoices: plan.invoices,
    sealed: counts.sealed,
    failed: counts.failed,
    seconds: timed.seconds,
    rate,
    cpuMs: {
      bench: timed.cpuMs,
      workers: sum((r) => r.cpuMs),
      ...(sandbox0.cpuMs !== undefined && sandbox1.cpuMs !== undefined
        ? { sandbox: sandbox1.cpuMs - sandbox0.cpuMs }
        : {}),
      ...(redis0 !== undefined && redis1 !== undefined ? { redis: redis1 - redis0 } : {}),
    },
    signHashCalls: sum((r) => r.signHashCalls),
    authorisations: sum((r) => r.authorisations),
    signaturesAuthorised: sum((r) => r.signaturesAuthorised),
    unusedSignatures: sum((r) => r.unusedSignatures),
    timestampRequests: sum((r) => r.timestampRequests),
    ocsp: sum((r) => r.ocsp),
    crl: sum((r) => r.crl),
    bytesAddedPerInvoice: files.length ? added / files.length : 0,
    runDate: produced.runDate,
    input,
    sealedBytesPerInvoice: files.length ? sealedBytes / files.length : 0,
    stages: Object.fromEntries(
      STAGE_NAMES.map((s) => [s, summarise(reports.map((r) => r.stages[s]))]),
    ) as NightFigures['stages'],
    batchMs: summarise(reports.map((r) => r.signHashMs)),
    hashesPerCall:
      sum((r) => r.signHashHashes.reduce((a, b) => a + b, 0)) /
      Math.max(
        1,
        sum((r) => r.signHashHashes.length),
      ),
    maxRssKb: {
      bench: process.resourceUsage().maxRSS,
      workers: reports.map((r) => r.maxRssKb),
      ...(sealingRssKb?.every((k) => k !== undefined) && { workersSealing: sealingRssKb as number[] }),
      ...(sandbox1.maxRssKb === undefined ? {} : { sandbox: sandbox1.maxRssKb }),
    },
    redisMemory: {
      baselineBytes: memory.baseline,
      peakBytes: memory.peak,
      lifetimePeakBytes: await memory.lifetimePeak(),
    },
    ceiling: {
      multisign: c.multisign,
      totpPeriodSec: env.totpPeriodSec,
      invoicesPerSec: ceiling,
      percent: (rate / ceiling) * 100,
    },
    ...(verified ? { verified } : {}),
  };
}

/** The product's verifier on every sealed file, chains to the sandbox root. */
async function verifyAll(
  outDir: string,
  files: string[],
  rootCertPath: string,
): Promise<{ valid: number; files: number; problems: string[] }> {
  const pem = await fs.readFile(rootCertPath, 'utf8');
  const rootDer = new crypto.X509Certificate(pem).raw;
  let valid = 0;
  const problems: string[] = [];
  for (const f of files) {
    const checks = await verifySealedPdf(await fs.readFile(path.join(outDir, f)), {
      trustedRootsDer: [rootDer],
    });
    const signatures = checks.filter((x) => x.kind === 'signature');
    if (signatures.length === 1 && checks.every((x) => x.valid && x.chainTrusted === true)) valid++;
    else if (problems.length < 5) {
      problems.push(`${f}: ${checks.flatMap((x) => x.problems).join('; ') || 'no signature'}`);
    }
  }
  return { valid, files: files.length, problems };
}

// One worker process of `sealer bench` (started with child_process.fork): a SealWorker on the bench's
// Redis prefix that records what the sealing parts report (signHash call durations, each invoice's
// stages) and, when told to stop, closes and sends those figures with its own CPU time and peak RSS.
// Messages: parent → child `BenchWorkerStart`, then `{ type: 'stop' }`; child → parent `{ type:
// 'ready' }`, then `BenchWorkerReport`.
import pino from 'pino';
import { createLogger } from '../common/logger';
import { connectRedis } from '../common/redis';
import type { SealingEvent } from '../common/sealing-events';
import { loadJobFile } from '../jobs';
import { SealWorker } from '../queue';

export interface BenchWorkerStart {
  type: 'start';
  jobFile: string;
  redisUrl: string;
  prefix: string;
  concurrency: number;
  awaitingSignature: number;
  logFile: string;
}

/** Stage durations of the sealed invoices, one array per stage in the same invoice order (ms). */
export interface StageSamples {
  queueMs: Float64Array;
  prepareMs: Float64Array;
  signMs: Float64Array;
  finishMs: Float64Array;
  deliverMs: Float64Array;
  recordMs: Float64Array;
}

export const STAGE_NAMES = ['queueMs', 'prepareMs', 'signMs', 'finishMs', 'deliverMs', 'recordMs'] as const;

/** What a night asked of the provider, the TSA and the revocation sources (a worker's and a night's). */
export interface ProviderCallCounts {
  signHashCalls: number;
  authorisations: number;
  signaturesAuthorised: number;
  unusedSignatures: number;
  timestampRequests: number;
  ocsp: number;
  crl: number;
}

export interface BenchWorkerReport extends ProviderCallCounts {
  type: 'report';
  pid: number;
  /** this process's CPU from ready to stop (ms) */
  cpuMs: number;
  /** peak resident set size of this process (KB, getrusage) */
  maxRssKb: number;
  sealed: number;
  stages: StageSamples;
  /** durations of the successful signHash calls (ms) and their hash counts */
  signHashMs: Float64Array;
  signHashHashes: Float64Array;
}

/** Grows a Float64Array list without holding one JS number object per value. */
class Samples {
  private data = new Float64Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  take(): Float64Array {
    return this.data.slice(0, this.length);
  }
}

async function main(start: BenchWorkerStart): Promise<void> {
  const logger = createLogger({
    level: 'warn',
    destination: pino.destination({ dest: start.logFile, sync: false, append: true }),
  });
  const redis = connectRedis(start.redisUrl);
  const stages = Object.fromEntries(STAGE_NAMES.map((n) => [n, new Samples()])) as Record<
    (typeof STAGE_NAMES)[number],
    Samples
  >;
  const signHashMs = new Samples();
  const signHashHashes = new Samples();
  let sealed = 0;
  let signaturesAuthorised = 0;
  const observe = (e: SealingEvent): void => {
    if (e.type === 'signHash' && e.ok) {
      signHashMs.push(e.ms);
      signHashHashes.push(e.hashes);
    } else if (e.type === 'authorize') {
      signaturesAuthorised += e.numSignatures;
    } else if (e.type === 'sealed') {
      sealed++;
      if (e.stages) for (const n of STAGE_NAMES) stages[n].push(e.stages[n]);
    }
  };
  const job = await loadJobFile(start.jobFile);
  const worker = new SealWorker({
    connection: { url: start.redisUrl, maxRetriesPerRequest: null },
    redis,
    prefix: start.prefix,
    jobs: [job],
    logger,
    concurrency: start.concurrency,
    awaitingSignature: start.awaitingSignature,
    observe,
  });
  const running = worker.run();
  // CPU from here to the stop message: the night's work, not loading modules or closing.
  const cpu0 = process.cpuUsage();
  process.send!({ type: 'ready' });
  await new Promise<void>((resolve) =>
    process.on('message', (m: { type?: string }) => {
      if (m.type === 'stop') resolve();
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  await worker.close();
  await running;
  // What runNight reports per credential, summed over this process's signing contexts.
  const contexts = await worker.contexts.all();
  const revocation = worker.contexts.revocationStats();
  const report: BenchWorkerReport = {
    type: 'report',
    pid: process.pid,
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxRssKb: process.resourceUsage().maxRSS,
    sealed,
    stages: Object.fromEntries(STAGE_NAMES.map((n) => [n, stages[n].take()])) as unknown as StageSamples,
    signHashMs: signHashMs.take(),
    signHashHashes: signHashHashes.take(),
    signHashCalls: contexts.reduce((n, c) => n + c.client.calls.signHash, 0),
    authorisations: contexts.reduce((n, c) => n + c.client.calls.authorize, 0),
    signaturesAuthorised,
    unusedSignatures: contexts.reduce((n, c) => n + c.sadManager.unusedSignatures(), 0),
    timestampRequests: contexts.reduce(
      (n, c) => n + c.timestampSources.reduce((m, t) => m + t.stats.requests, 0),
      0,
    ),
    ocsp: revocation.ocspRequests,
    crl: revocation.crlRequests,
  };
  await redis.quit();
  await new Promise<void>((resolve, reject) =>
    process.send!(report, undefined, {}, (err) => (err ? reject(err) : resolve())),
  );
  process.disconnect();
}

if (require.main === module) {
  process.once('message', (m: BenchWorkerStart) => {
    main(m).catch((err: unknown) => {
      process.stderr.write(`bench worker ${process.pid}: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    });
  });
}

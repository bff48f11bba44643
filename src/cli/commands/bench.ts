import { benchArchive } from '../../archive/bench-archive';
import { runBench, type BenchKey, type BenchLevel } from '../../demo/bench';
import type { BenchInput } from '../../demo/bench-types';
// main.ts parses --level itself (bench-levels.ts), so that it need not load this module to do so.
export { parseBenchLevels } from '../bench-levels';

export async function benchCommand(opts: {
  invoices: number;
  concurrency: number;
  awaitingSignature?: number;
  batchSize: number;
  latencyMs: number;
  level: BenchLevel[];
  tsaLatencyMs: number;
  totpPeriod: number;
  key: BenchKey;
  credential?: string;
  workers: number;
  naive: number;
  json?: string;
  workDir?: string;
  verify?: boolean;
  archiveRows?: number;
  archive?: string;
  input: BenchInput;
}): Promise<void> {
  if (opts.archiveRows !== undefined) {
    await benchArchive({
      rows: opts.archiveRows,
      spec: opts.archive,
      out: (line: string) => console.log(line),
    });
    return;
  }
  await runBench({
    invoices: opts.invoices,
    concurrency: opts.concurrency,
    awaitingSignature: opts.awaitingSignature,
    batchSize: opts.batchSize,
    latencyMs: opts.latencyMs,
    levels: opts.level,
    tsaLatencyMs: opts.tsaLatencyMs,
    totpPeriodSec: opts.totpPeriod,
    key: opts.key,
    credential: opts.credential,
    workers: opts.workers,
    naive: opts.naive,
    json: opts.json,
    workDir: opts.workDir,
    verify: opts.verify === true,
    input: opts.input,
  });
}

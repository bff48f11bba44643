import { benchArchive } from '../../archive/bench-archive';
import { runBench, type BenchLevel } from '../../demo/bench';
// main.ts parses --level itself (bench-levels.ts), so that it need not load this module to do so.
export { parseBenchLevels } from '../bench-levels';

export async function benchCommand(opts: {
  invoices: number;
  concurrency: number;
  batchSize: number;
  latencyMs: number;
  level: BenchLevel[];
  tsaLatencyMs: number;
  archiveRows?: number;
  archive?: string;
}): Promise<void> {
  if (opts.archiveRows !== undefined) {
    await benchArchive({
      rows: opts.archiveRows,
      spec: opts.archive,
      out: (line: string) => console.log(line),
    });
    return;
  }
  await runBench({ ...opts, levels: opts.level });
}

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
}): Promise<void> {
  await runBench({ ...opts, levels: opts.level });
}

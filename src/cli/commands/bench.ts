import { InvalidArgumentError } from 'commander';
import { BENCH_LEVELS, runBench, type BenchLevel } from '../../demo/bench';

/** `--level B-T`, `--level B-B,B-LTA` or `--level all`. */
export function parseBenchLevels(value: string): BenchLevel[] {
  if (value === 'all') return [...BENCH_LEVELS];
  const levels = value.split(',').map((v) => v.trim().toUpperCase());
  for (const level of levels) {
    if (!(BENCH_LEVELS as readonly string[]).includes(level)) {
      throw new InvalidArgumentError(`"${level}" is not a level; use ${BENCH_LEVELS.join(', ')} or all`);
    }
  }
  return levels as BenchLevel[];
}

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

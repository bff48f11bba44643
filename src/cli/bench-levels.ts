// `sealer bench --level`'s parser, kept out of commands/bench.ts: main.ts needs it while it builds the
// command line, and commands/bench.ts loads the whole sealing path.
import { InvalidArgumentError } from 'commander';
import { BENCH_LEVELS, type BenchLevel } from '../demo/bench-levels';

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

/** `--key ec|rsa`. */
export function parseBenchKey(value: string): 'ec' | 'rsa' {
  if (value !== 'ec' && value !== 'rsa')
    throw new InvalidArgumentError(`"${value}" is not a key type; use ec or rsa`);
  return value;
}

/** `--input pdf|data`. */
export function parseBenchInput(value: string): 'pdf' | 'data' {
  if (value !== 'pdf' && value !== 'data')
    throw new InvalidArgumentError(`"${value}" is not an input kind; use pdf or data`);
  return value;
}

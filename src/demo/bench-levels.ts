// The PAdES levels the benchmark can seal at, apart from the benchmark itself so that `sealer`'s option
// parser can check `--level` without loading the sealing code.
export type BenchLevel = 'B-B' | 'B-T' | 'B-LT' | 'B-LTA';
export const BENCH_LEVELS: readonly BenchLevel[] = ['B-B', 'B-T', 'B-LT', 'B-LTA'];

import { runBench } from '../../demo/bench';

export async function benchCommand(opts: {
  invoices: number;
  concurrency: number;
  batchSize: number;
  latencyMs: number;
}): Promise<void> {
  await runBench(opts);
}

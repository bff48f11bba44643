import { runDemo } from '../../demo/run-demo';

export async function demoCommand(opts: { concurrency: number }): Promise<void> {
  await runDemo({ home: process.cwd(), concurrency: opts.concurrency });
}

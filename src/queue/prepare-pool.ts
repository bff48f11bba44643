// The thread pool for the prepare step. One pool per process, sized to the cores.
import os from 'node:os';
import path from 'node:path';
import Piscina from 'piscina';
import type { PrepareTask, PrepareTaskResult } from './prepare-task';

export class PreparePool {
  private readonly pool: Piscina;

  constructor(options: { threads?: number } = {}) {
    const threads = options.threads ?? Math.max(1, os.availableParallelism());
    this.pool = new Piscina({
      filename: path.join(__dirname, 'prepare-task.js'),
      name: 'prepareTask',
      minThreads: threads,
      maxThreads: threads,
    });
  }

  run(task: PrepareTask): Promise<PrepareTaskResult> {
    return this.pool.run(task);
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

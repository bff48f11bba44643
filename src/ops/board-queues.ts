// The BullMQ queues the dashboard opens: the queue part's SealQueues (one seal queue per tenant, which
// retryJobs routes through) and, for the board, each tenant's seal queue and the renew queue.
import { Queue, type ConnectionOptions } from 'bullmq';
import { RENEW_QUEUE, openSealQueues, type SealQueues } from '../queue';

export class OpsQueues {
  /** every tenant's seal queue, routed by tenant */
  readonly seal: SealQueues;
  private renew?: Queue;

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly prefix: string,
  ) {
    this.seal = openSealQueues(connection, prefix);
  }

  /**
   * What the board shows: the seal queue of every tenant the job definitions or the queue registry
   * know (a tenant whose definition was removed may still have jobs), then the renew queue.
   */
  async boardQueues(tenants: string[]): Promise<Queue[]> {
    const all = await this.seal.tenants(tenants);
    this.renew ??= new Queue(RENEW_QUEUE, { connection: this.connection, prefix: this.prefix });
    return [...all.map((t) => this.seal.forTenant(t) as Queue), this.renew];
  }

  async close(): Promise<void> {
    await this.seal.close();
    await this.renew?.close();
  }
}

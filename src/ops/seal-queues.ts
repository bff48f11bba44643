// Which BullMQ queues the dashboard opens: the board shows every tenant's seal queue and the renew
// queue; a retry needs the queue that holds a tenant's seal jobs. Kept in this one module because the
// queue layout is changing (one seal queue per tenant, sealQueueName): when the switch lands, only
// `sealQueueOf` changes.
import { Queue, type ConnectionOptions } from 'bullmq';
import { RENEW_QUEUE, SEAL_QUEUE, openSealQueue, sealQueueName, type SealJobData } from '../queue';

export class SealQueues {
  private readonly byName = new Map<string, Queue>();

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly prefix: string,
  ) {}

  /**
   * The queue a tenant's seal jobs are in, for retryJobs' getJob and retry. Today every tenant's
   * jobs are in the shared SEAL_QUEUE (openSealQueue); with per-tenant queues this returns
   * `this.open(sealQueueName(tenant))`.
   */
  sealQueueOf(tenant: string): Queue<SealJobData> {
    void tenant;
    let q = this.byName.get(SEAL_QUEUE);
    if (!q) {
      q = openSealQueue(this.connection, this.prefix);
      this.byName.set(SEAL_QUEUE, q);
    }
    return q as Queue<SealJobData>;
  }

  /**
   * The queues the board shows, by name: each tenant's seal queue, the renew queue, and (until the
   * per-tenant switch empties it) the shared seal queue that still holds every tenant's jobs.
   */
  boardQueues(tenants: string[]): Queue[] {
    const names = [...new Set([...tenants.map(sealQueueName), SEAL_QUEUE, RENEW_QUEUE])];
    return names.map((name) => (name === SEAL_QUEUE ? this.sealQueueOf('') : this.open(name)));
  }

  private open(name: string): Queue {
    let q = this.byName.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.prefix });
      this.byName.set(name, q);
    }
    return q;
  }

  async close(): Promise<void> {
    await Promise.all([...this.byName.values()].map((q) => q.close()));
    this.byName.clear();
  }
}

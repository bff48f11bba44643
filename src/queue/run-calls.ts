// Each run's provider calls, counted from what the batch signer and SAD manager report: a signHash call
// whose batch mixes invoices of several runs counts once for each of them (the run took part in it),
// and its hashes go to the runs they belong to. An approval-based tenant's authorisations are made at
// approval time, not by a run, and are not counted here.
import type { Redis } from 'ioredis';
import type { SealingObserver } from '../common/sealing-events';
import { runKey } from './run-record';

export function countProviderCalls(
  redis: Redis,
  prefix: string,
  onError: (err: Error) => void,
): SealingObserver {
  return (event) => {
    const multi = redis.multi();
    if (event.type === 'signHash') {
      for (const [runId, hashes] of Object.entries(event.runs)) {
        multi.hincrby(runKey(prefix, runId), 'signHashCalls', 1);
        if (event.ok) multi.hincrby(runKey(prefix, runId), 'signHashHashes', hashes);
      }
    } else if (event.type === 'authorize') {
      for (const runId of event.runs) multi.hincrby(runKey(prefix, runId), 'authorizeCalls', 1);
    } else {
      return;
    }
    // Sent on the worker's connection before the invoices' own writes, so a settled run has them.
    multi.exec().catch((err: unknown) => onError(err as Error));
  };
}

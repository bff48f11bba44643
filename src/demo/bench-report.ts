// The benchmark's printed lines, from the figures runBench gathered (the same figures go to --json).
import type { BenchFigures, NightFigures } from './bench-types';
import type { Summary } from './bench-figures';

const STAGE_LABELS: Record<keyof NightFigures['stages'], string> = {
  queueMs: 'queue wait',
  prepareMs: 'prepare',
  signMs: 'signHash wait',
  finishMs: 'finish',
  deliverMs: 'deliver',
  recordMs: 'run record',
};

const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const us = (ms: number) => (ms * 1000).toFixed(0);
const stage = (s: Summary) => `${us(s.mean)} / ${us(s.p50)} / ${us(s.p99)}`;

function cpuLine(n: NightFigures): string {
  const per = (ms: number | undefined) => (ms === undefined ? 'n/a' : `${(ms / n.sealed).toFixed(2)} ms`);
  return (
    `  CPU per invoice: workers ${per(n.cpuMs.workers)}, bench process (producer, polling) ${per(n.cpuMs.bench)}, ` +
    `sandbox ${per(n.cpuMs.sandbox)}, Redis ${per(n.cpuMs.redis)} (the whole server's)`
  );
}

function nightLines(n: NightFigures, say: (line: string) => void): void {
  const c = n.ceiling;
  say(
    `  authorisation ceiling: multisign ${c.multisign} / ${c.totpPeriodSec} s TOTP step = ${c.invoicesPerSec.toFixed(1)} invoices/s; ` +
      `reached ${n.rate.toFixed(1)}/s = ${c.percent.toFixed(1)} % of it ` +
      `(${n.authorisations} authorisations, ${n.signaturesAuthorised} signatures authorised, ${n.unusedSignatures} left on the last SAD)`,
  );
  if (n.sealed > 0) say(cpuLine(n));
  say(
    `  stages per invoice, wall µs mean / p50 / p99 (invoices in flight overlap): ` +
      Object.entries(STAGE_LABELS)
        .map(([k, label]) => `${label} ${stage(n.stages[k as keyof NightFigures['stages']])}`)
        .join('; '),
  );
  say(
    `  signHash batches: ${n.batchMs.count} calls, ${n.hashesPerCall.toFixed(1)} hashes/call, ` +
      `latency p50 ${n.batchMs.p50.toFixed(1)} ms, p99 ${n.batchMs.p99.toFixed(1)} ms`,
  );
  const r = n.redisMemory;
  say(
    `  peak RSS: worker${n.workers === 1 ? '' : 's'} ${n.maxRssKb.workers.map(mb).join(', ')}` +
      `${n.maxRssKb.workersSealing ? ` (${n.maxRssKb.workersSealing.map(mb).join(', ')} until 95 % was sealed)` : ''}, bench ${mb(n.maxRssKb.bench)}, ` +
      `sandbox ${n.maxRssKb.sandbox === undefined ? 'n/a' : mb(n.maxRssKb.sandbox)}; ` +
      `Redis used_memory peak ${mib(r.peakBytes)} (+${mib(r.peakBytes - r.baselineBytes)} over the night's start, sampled every 100 ms` +
      `${r.lifetimePeakBytes === undefined ? '' : `; server lifetime peak ${mib(r.lifetimePeakBytes)}`}; a server other clients share)`,
  );
  if (n.verified) {
    say(
      `  verified: ${n.verified.valid} of ${n.verified.files} sealed files valid with a trusted chain (product verifier)` +
        (n.verified.problems.length ? `; ${n.verified.problems.join(' | ')}` : ''),
    );
  }
}

export function printFigures(f: BenchFigures, say: (line: string) => void): void {
  for (const n of f.nights) {
    say(
      `sealed ${n.level.padEnd(5)}: ${n.sealed} invoices in ${n.seconds.toFixed(2)} s = ${n.rate.toFixed(0)} invoices/s, ` +
        `${((n.cpuMs.workers + n.cpuMs.bench) / n.sealed).toFixed(2)} CPU ms/invoice; ${n.signHashCalls} signHash calls, ${n.authorisations} authorize calls, ` +
        `${n.timestampRequests} TSA calls (${(n.timestampRequests / n.sealed).toFixed(2)}/invoice), ` +
        `${n.ocsp} OCSP + ${n.crl} CRL fetches, ` +
        (n.input === 'data'
          ? `rendered from data, ${(n.sealedBytesPerInvoice / 1024).toFixed(1)} KB/sealed invoice`
          : `${(n.bytesAddedPerInvoice / 1024).toFixed(1)} KB added/invoice`),
    );
    nightLines(n, say);
  }
  const naive = f.naive;
  if (naive) {
    say(
      `naive:    ${naive.sealed} invoices in ${naive.seconds.toFixed(2)} s = ${naive.rate.toFixed(3)} invoices/s, one authorize + one signHash per invoice, ` +
        `one at a time (${naive.authorisations} authorize, ${naive.signHashCalls} signHash calls; a fresh TOTP step each)`,
    );
    if (naive.sealed > 0) say(cpuLine(naive));
  }
  say(
    `floor:    ${f.nights[0]?.invoices ?? 0} read+SHA-256+write copies in ${f.floor.seconds.toFixed(2)} s = ${f.floor.rate.toFixed(0)} invoices/s, ${f.floor.cpuMsPerInvoice.toFixed(3)} CPU ms/invoice`,
  );
  for (const n of f.nights) {
    // One summary line per level; with one level it is the run's summary, as before levels existed.
    say(
      `bench${f.nights.length > 1 ? ` ${n.level}` : ''}: ${n.sealed} sealed, ${n.rate.toFixed(0)} invoices/s, ` +
        `${((n.cpuMs.workers + n.cpuMs.bench) / n.sealed).toFixed(2)} CPU ms/invoice, floor ratio ${(f.floor.rate / n.rate).toFixed(1)}x` +
        (n.level === 'B-B'
          ? ''
          : `, level ${n.level}, ${n.timestampRequests} TSA calls, ${n.ocsp + n.crl} revocation fetches`),
    );
  }
  const first = f.nights[0];
  if (naive && first && naive.rate > 0) {
    say(
      `worker/naive: ${(first.rate / naive.rate).toFixed(0)}x (${first.rate.toFixed(1)} vs ${naive.rate.toFixed(3)} invoices/s, ${first.level}, TOTP step ${first.ceiling.totpPeriodSec} s)`,
    );
  }
}

// What the benchmark measures besides its own clock: percentiles of sample arrays, other processes' CPU
// time and peak RSS from /proc (Linux; undefined elsewhere), and Redis's CPU and memory from INFO.
import fs from 'node:fs/promises';
import type { Redis } from 'ioredis';

export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

/** Mean and nearest-rank percentiles of the values of every array together. */
export function summarise(parts: readonly Float64Array[]): Summary {
  const count = parts.reduce((n, p) => n + p.length, 0);
  if (count === 0) return { count: 0, mean: 0, p50: 0, p99: 0, max: 0 };
  const all = new Float64Array(count);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  all.sort();
  const rank = (q: number) => all[Math.min(count - 1, Math.max(0, Math.ceil(q * count) - 1))]!;
  return {
    count,
    mean: all.reduce((s, v) => s + v, 0) / count,
    p50: rank(0.5),
    p99: rank(0.99),
    max: all[count - 1]!,
  };
}

/** CPU time (user + system, ms) and peak RSS (KB) of a live process, from /proc/<pid>. */
export async function procStats(pid: number): Promise<{ cpuMs?: number; maxRssKb?: number }> {
  const out: { cpuMs?: number; maxRssKb?: number } = {};
  try {
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Clock ticks: USER_HZ is 100 on every Linux this runs on (getconf CLK_TCK).
    out.cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    // not Linux, or the process is gone
  }
  try {
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    if (hwm) out.maxRssKb = Number(hwm[1]);
  } catch {
    // as above
  }
  return out;
}

function infoField(info: string, name: string): number | undefined {
  const m = new RegExp(`^${name}:([\\d.]+)\\r?$`, 'm').exec(info);
  return m ? Number(m[1]) : undefined;
}

/** Redis's own CPU time so far (ms, user + system of the server process, every client's work). */
export async function redisCpuMs(redis: Redis): Promise<number | undefined> {
  const info = await redis.info('cpu');
  const user = infoField(info, 'used_cpu_user');
  const sys = infoField(info, 'used_cpu_sys');
  return user === undefined || sys === undefined ? undefined : (user + sys) * 1000;
}

/**
 * Samples Redis's `used_memory` while a night runs, for its peak above the start. Redis keeps only a
 * lifetime peak (`used_memory_peak`, reset by CONFIG RESETSTAT for every client of the server), so the
 * benchmark samples instead of resetting a server other sessions share; a short peak between two samples
 * can be missed, and other clients' keys count too.
 */
export class RedisMemorySampler {
  baseline = 0;
  peak = 0;
  private samples = 0;

  constructor(private readonly redis: Redis) {}

  async sample(): Promise<void> {
    const used = infoField(await this.redis.info('memory'), 'used_memory') ?? 0;
    if (this.samples++ === 0) this.baseline = used;
    this.peak = Math.max(this.peak, used);
  }

  /** The server's lifetime peak (INFO memory used_memory_peak), for comparison. */
  async lifetimePeak(): Promise<number | undefined> {
    return infoField(await this.redis.info('memory'), 'used_memory_peak');
  }
}

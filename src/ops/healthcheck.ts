// The container healthcheck of the compose file's worker and scheduler: that the container's main
// process is still the sealer command it was started as (not exited and replaced by a shell, not a
// zombie), that Redis answers PING now and, given the URL of the process's own /healthz (`sealer work
// --metrics-port`), that it answers 200 (Redis, provider, thread pool). Run as
//   node dist/src/ops/healthcheck.js <command> [healthz URL]     (e.g. work, schedule)
// it prints one line naming what is wrong and exits 1, or exits 0. The pid (1 in a container) and the Redis
// URL come from HEALTHCHECK_PID and REDIS_URL, so a test can point it at any process.
import fs from 'node:fs/promises';
import { fetch } from 'undici';
import { redisAnswers } from '../common/redis';

export interface HealthResult {
  ok: boolean;
  reason?: string;
}

/** Whether process `pid` runs the sealer's `command` and is not a zombie (Linux /proc). */
export async function processRuns(pid: number, command: string): Promise<HealthResult> {
  let cmdline: string;
  let stat: string;
  try {
    cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
    stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { ok: false, reason: `process ${pid} is not running` };
  }
  // The state is the field after the parenthesised name, which may itself hold spaces.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  if (state === 'Z') return { ok: false, reason: `process ${pid} has exited (zombie)` };
  const args = cmdline.split('\0').filter(Boolean);
  const script = args.findIndex((a) => a.endsWith('main.js'));
  if (script < 0 || args[script + 1] !== command) {
    return { ok: false, reason: `process ${pid} is not \`sealer ${command}\` (it runs: ${args.join(' ')})` };
  }
  return { ok: true };
}

// The reason lands in `docker inspect` output, which is no place for a Redis password.
function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable REDIS_URL)';
  }
}

export async function checkHealth(opts: {
  pid: number;
  command: string;
  redisUrl: string;
  /** the process's own /healthz (sealer work --metrics-port): it must answer 200 */
  healthzUrl?: string;
}): Promise<HealthResult> {
  const proc = await processRuns(opts.pid, opts.command);
  if (!proc.ok) return proc;
  if (!(await redisAnswers(opts.redisUrl))) {
    return { ok: false, reason: `Redis at ${withoutPassword(opts.redisUrl)} does not answer PING` };
  }
  if (opts.healthzUrl !== undefined) return healthzAnswers(opts.healthzUrl);
  return { ok: true };
}

/** GET /healthz: 200 is healthy; otherwise the checks it names as failed (redis, provider, pool). */
async function healthzAnswers(url: string): Promise<HealthResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
    if (res.status === 200) return { ok: true };
    const body = (await res.json().catch(() => ({}))) as { failed?: unknown };
    const failed = Array.isArray(body.failed) ? body.failed.join(', ') : `HTTP ${res.status}`;
    return { ok: false, reason: `${url} says unhealthy: ${failed}` };
  } catch (err) {
    return { ok: false, reason: `${url} does not answer: ${(err as Error).message}` };
  }
}

if (require.main === module) {
  const command = process.argv[2];
  if (!command) {
    process.stderr.write('usage: healthcheck.js <sealer command, e.g. work> [healthz URL]\n');
    process.exitCode = 2;
  } else {
    checkHealth({
      pid: Number(process.env.HEALTHCHECK_PID ?? 1),
      command,
      redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      healthzUrl: process.argv[3],
    }).then(
      (r) => {
        if (!r.ok) process.stderr.write(`unhealthy: ${r.reason}\n`);
        process.exitCode = r.ok ? 0 : 1;
      },
      (err: unknown) => {
        process.stderr.write(`unhealthy: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      },
    );
  }
}

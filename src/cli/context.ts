// What every long-running command needs: a Redis, the job definitions, a logger, and a place to release
// them all in `finally`. Plus the streams a command writes to, so a test can run it in-process.
import path from 'node:path';
import type { ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis, resolveRedis, type RedisEndpoint } from '../common/redis';
import { createLogger, type Logger } from '../common/logger';
import { loadJobSet, type JobDefinition, type JobProblem } from '../jobs';
import { DEFAULT_PREFIX } from '../queue';

/** Where a command's output goes, and what stops a long-running one besides SIGINT/SIGTERM. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  /** isTTY as on process.stderr: progress is redrawn only on a terminal. */
  stderr: { write(text: string): unknown; isTTY?: boolean };
  /** Aborting it stops `schedule` as SIGINT would (for runs inside a test process). */
  signal?: AbortSignal;
  /** The pino logs' destination (default: stderr). */
  logs?: { write(line: string): unknown };
}

export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

export function loggerFor(io: CliIo): Logger {
  return createLogger(io.logs ? { destination: io.logs } : {});
}

export interface CommonOptions {
  jobs: string;
  prefix?: string;
  waitForRedisMs?: number;
}

export interface CommandContext {
  /** the job definitions that can run */
  jobs: JobDefinition[];
  /** the job files left out, each named with its reason (already logged at error level) */
  problems: JobProblem[];
  redis: Redis;
  endpoint: RedisEndpoint;
  connection: ConnectionOptions;
  prefix: string;
  logger: Logger;
  release(): Promise<void>;
}

/** One line per job left out, for a command to show on stderr. */
export function describeProblem(p: JobProblem): string {
  return `job ${p.job} skipped: ${p.reason}`;
}

export async function openContext(opts: CommonOptions, logger = createLogger()): Promise<CommandContext> {
  // One tenant's broken definition is named and left out; the other tenants' night goes on.
  const { jobs, problems } = await loadJobSet(path.resolve(opts.jobs));
  for (const p of problems) {
    logger.error({ job: p.job, file: p.file, reason: p.reason }, 'job definition skipped');
  }
  // Long-running commands wait a little for a Redis starting beside them; none falls back to a
  // private one, whose queue would vanish with the process.
  const endpoint = await resolveRedis({ waitMs: opts.waitForRedisMs ?? 0 });
  const redis = connectRedis(endpoint.url);
  return {
    jobs,
    problems,
    redis,
    endpoint,
    connection: { url: endpoint.url, maxRetriesPerRequest: null },
    prefix: opts.prefix ?? process.env.SEALER_PREFIX ?? DEFAULT_PREFIX,
    logger,
    release: async () => {
      await redis.quit();
      await endpoint.release();
      logger.flush();
    },
  };
}

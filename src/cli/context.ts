// What every long-running command needs: a Redis, the job definitions, a logger, and a place to release
// them all in `finally`.
import path from 'node:path';
import type { ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis, resolveRedis, type RedisEndpoint } from '../common/redis';
import { createLogger, type Logger } from '../common/logger';
import { loadJobs, type JobDefinition } from '../jobs';
import { DEFAULT_PREFIX } from '../queue';

export interface CommonOptions {
  jobs: string;
  prefix?: string;
  waitForRedisMs?: number;
}

export interface CommandContext {
  jobs: JobDefinition[];
  redis: Redis;
  endpoint: RedisEndpoint;
  connection: ConnectionOptions;
  prefix: string;
  logger: Logger;
  release(): Promise<void>;
}

export async function openContext(opts: CommonOptions, logger = createLogger()): Promise<CommandContext> {
  const jobs = await loadJobs(path.resolve(opts.jobs));
  // Long-running commands wait a little for a Redis starting beside them; none falls back to a
  // private one, whose queue would vanish with the process.
  const endpoint = await resolveRedis({ waitMs: opts.waitForRedisMs ?? 0 });
  const redis = connectRedis(endpoint.url);
  return {
    jobs,
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

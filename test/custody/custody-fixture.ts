// Shared by the custody tests: a TOTP clock that stands still until someone waits (so that every
// worker of a test is in the same time step until one of them waits for the next), Redis connections of
// their own (one per simulated worker process, closed after the file), and a log capture.
import { after } from 'node:test';
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { connectRedis } from '../../src/common/redis';

/** TOTP time that moves only when slept on: now() is fixed, sleep(ms) moves it on at once. */
export class StepClock {
  constructor(private t: number = Math.floor(Date.now() / 1000) * 1000 + 100) {}
  readonly now = (): number => this.t;
  readonly sleep = async (ms: number): Promise<void> => {
    this.t += Math.max(0, ms);
  };
}

/** A Redis connection of its own, as another worker process would have; closed after the file. */
export function ownConnection(url: string): Redis {
  const redis = connectRedis(url);
  after(() => redis.disconnect());
  return redis;
}

export interface Captured {
  logger: pino.Logger;
  lines(): Record<string, unknown>[];
  text(): string;
}

export function capture(level: pino.Level = 'debug'): Captured {
  const chunks: string[] = [];
  const logger = pino(
    { level },
    new Writable({
      write(chunk, _enc, done) {
        chunks.push(String(chunk));
        done();
      },
    }),
  );
  return {
    logger,
    lines: () => chunks.map((c) => JSON.parse(c) as Record<string, unknown>),
    text: () => chunks.join(''),
  };
}

/** Resolves once `check` holds, looking every few milliseconds; fails after `limitMs` (a hang guard). */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  limitMs = 10_000,
): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > limitMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

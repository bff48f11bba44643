// The AuthorisationGuard shared by every worker process of a credential, in Redis: the authorisation
// lease (SET NX PX with a random token, renewed while held, deleted only by its holder; a crashed
// holder's lease runs out), the last TOTP step used (claimed atomically: only a later step wins), and
// the latch (see credential-latches.ts).
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import pino from 'pino';
import type { AuthorisationGuard, CredentialLatch, InHandElsewhere, StepClaim } from '../csc';
import type { Logger } from '../common/logger';
import { inHandKey, leaseKey, totpStepKey, type CredentialRef } from './credential-keys';
import { clearCredentialLatch, readLatch, setLatch } from './credential-latches';
import { CustodyError } from './custody-error';

export interface RedisAuthorisationGuardOptions {
  redis: Redis;
  /** The worker's Redis key prefix (SEALER_PREFIX, default `sealer`). */
  prefix: string;
  credential: CredentialRef;
  /** Lease lifetime without renewal: how long a crashed holder blocks the others. Default 30000 ms. */
  leaseMs?: number;
  /** Mean wait between tries for a held lease (jittered by half either way). Default 50 ms. */
  pollMs?: number;
  /** Longest wait for the lease before giving up with a CustodyError (the job retries). Default 600000 ms. */
  maxWaitMs?: number;
  logger?: Logger;
}

// KEYS[1] lease; ARGV[1] holder's token, ARGV[2] lifetime (ms). Returns 1 when renewed, 0 when not held.
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

// KEYS[1] lease; ARGV[1] holder's token. Returns 1 when deleted, 0 when someone else holds it (or none).
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

// KEYS[1] last step used; ARGV[1] step, ARGV[2] lifetime of the claim (ms).
// Returns {1, step} when claimed (step > stored), else {0, stored}, as strings (steps exceed 2^31).
const CLAIM_STEP = `
local stored = redis.call('GET', KEYS[1])
if stored == false or tonumber(ARGV[1]) > tonumber(stored) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ARGV[1]}
end
return {0, stored}
`;

// KEYS[1] in-hand hash; ARGV[1] own field, ARGV[2] own count, ARGV[3] now (ms), ARGV[4] lifetime (ms).
// Records the own count and returns the others' total and how many of them hold any (dropping the
// entries of processes that stopped telling).
const SHARE_IN_HAND = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (tonumber(ARGV[3]) + tonumber(ARGV[4])))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local others = 0
local holding = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then
    local n, expires = string.match(all[i + 1], '^(%d+):(%d+)$')
    if n and tonumber(expires) > tonumber(ARGV[3]) then
      others = others + tonumber(n)
      if tonumber(n) > 0 then holding = holding + 1 end
    else
      redis.call('HDEL', KEYS[1], all[i])
    end
  end
end
return {others, holding}
`;

/** How long a process's count of signatures in hand stands without being told again. */
const IN_HAND_MS = 30_000;

export class RedisAuthorisationGuard implements AuthorisationGuard {
  /** This guard's field in the in-hand hash: one per process and credential. */
  private readonly inHandField = crypto.randomUUID();
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly ref: CredentialRef;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly maxWaitMs: number;
  private readonly logger: Logger;

  constructor(o: RedisAuthorisationGuardOptions) {
    this.redis = o.redis;
    this.prefix = o.prefix;
    this.ref = { ...o.credential };
    this.leaseMs = o.leaseMs ?? 30_000;
    this.pollMs = o.pollMs ?? 50;
    this.maxWaitMs = o.maxWaitMs ?? 600_000;
    this.logger = o.logger ?? pino({ level: 'silent' });
    if (!(Number.isInteger(this.leaseMs) && this.leaseMs >= 100)) {
      throw new CustodyError(`authorisation lease of ${this.leaseMs} ms: give a whole number >= 100`);
    }
  }

  async withLease<T>(work: () => Promise<T>): Promise<T> {
    const key = leaseKey(this.prefix, this.ref);
    const token = crypto.randomBytes(16).toString('hex');
    await this.acquire(key, token);
    // Renewed at a third of its life, so two missed renewals still leave it held.
    const renewal = setInterval(
      () => this.renew(key, token, renewal).catch(() => undefined),
      Math.floor(this.leaseMs / 3),
    );
    renewal.unref();
    try {
      return await work();
    } finally {
      clearInterval(renewal);
      await this.redis.eval(RELEASE, 1, key, token).catch((err: unknown) => {
        // It runs out by itself; the others wait at most leaseMs longer.
        this.logger.warn({ ...this.ref, err: (err as Error).message }, 'authorisation lease not released');
      });
    }
  }

  async claimStep(step: number, periodSec: number): Promise<StepClaim> {
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new CustodyError(`TOTP step ${step} of credential ${this.ref.credentialId} is not a step number`);
    }
    // Kept well past its step, so a process whose clock lags by minutes still sees it.
    const ttlMs = Math.max(periodSec * 3, 300) * 1000;
    const reply = (await this.redis.eval(
      CLAIM_STEP,
      1,
      totpStepKey(this.prefix, this.ref),
      String(step),
      ttlMs,
    )) as [number, string];
    return reply[0] === 1 ? { claimed: true } : { claimed: false, lastUsed: Number(reply[1]) };
  }

  latched(): Promise<CredentialLatch | undefined> {
    return readLatch(this.redis, this.prefix, this.ref);
  }

  async latch(latch: CredentialLatch): Promise<void> {
    await setLatch(this.redis, this.prefix, this.ref, latch);
    this.logger.error(
      { ...this.ref, reason: latch.reason },
      'credential latched: no worker process authorises it until new factors, a new approval or a retry by ops',
    );
  }

  async clearLatch(): Promise<void> {
    await clearCredentialLatch(this.redis, this.prefix, this.ref);
  }

  async shareInHand(own: number): Promise<InHandElsewhere> {
    const [signatures, processes] = (await this.redis.eval(
      SHARE_IN_HAND,
      1,
      inHandKey(this.prefix, this.ref),
      this.inHandField,
      String(Math.max(0, Math.floor(own))),
      String(Date.now()),
      String(IN_HAND_MS),
    )) as [number, number];
    return { signatures: Number(signatures), processes: Number(processes) };
  }

  private async acquire(key: string, token: string): Promise<void> {
    const started = Date.now();
    let waited = false;
    for (;;) {
      if ((await this.redis.set(key, token, 'PX', this.leaseMs, 'NX')) === 'OK') {
        if (waited)
          this.logger.debug({ ...this.ref, waitedMs: Date.now() - started }, 'authorisation lease taken');
        return;
      }
      if (Date.now() - started >= this.maxWaitMs) {
        throw new CustodyError(
          `credential ${this.ref.credentialId} of tenant ${this.ref.tenant}: another worker process held the authorisation lease for over ${this.maxWaitMs} ms`,
        );
      }
      waited = true;
      await sleep(Math.round(this.pollMs / 2 + Math.random() * this.pollMs));
    }
  }

  private async renew(key: string, token: string, renewal: NodeJS.Timeout): Promise<void> {
    try {
      if ((await this.redis.eval(RENEW, 1, key, token, this.leaseMs)) === 1) return;
      // Expired (this process stalled longer than the lease) and perhaps taken: the work in hand goes
      // on, but another process may be authorising at the same time.
      clearInterval(renewal);
      this.logger.warn({ ...this.ref }, 'authorisation lease lost before the authorisation finished');
    } catch (err) {
      this.logger.warn({ ...this.ref, err: (err as Error).message }, 'authorisation lease not renewed');
    }
  }
}

/** One guard per credential, all on one Redis connection and prefix: what the queue wires in. */
export class RedisAuthorisationGuards {
  constructor(private readonly options: Omit<RedisAuthorisationGuardOptions, 'credential'>) {}

  for(credential: CredentialRef, logger?: Logger): RedisAuthorisationGuard {
    return new RedisAuthorisationGuard({
      ...this.options,
      credential,
      logger: logger ?? this.options.logger,
    });
  }
}

// Approvals parked in Redis: a SAD (approval at a prompt) or a credential-scope token (approval on the
// provider's page) that a tenant's approver granted for N signatures. Every worker process draws from
// it atomically (a Lua script), so N is never exceeded however many processes seal at once. The value
// is kept encrypted under the key-encryption key, bound to tenant and credential; only counts, expiry
// and a fingerprint are readable.
//
// A draw returns csc's seam type (Drawn), so the queue hands it to a SAD manager as an ApprovalSource
// and csc never knows where approvals are kept.
import type { Redis } from 'ioredis';
import { openBox, sealBox, type SealedBox } from '../common/aead';
import { secretFingerprint } from '../common/fingerprint';
import { ApprovalNeededError, type ApprovalKind, type Drawn } from '../csc';

export interface ParkApproval {
  tenant: string;
  credentialId: string;
  kind: ApprovalKind;
  /** the SAD or token: encrypted before it leaves this process */
  value: string;
  numSignatures: number;
  expiresAt: number;
  /** how it was approved: `oauth2code` or `prompt` */
  via: string;
  approvedBy?: string;
  /** SCAL2: the document hashes the approval is bound to (numSignatures must equal their count) */
  hashes?: readonly Buffer[];
}

/** A SCAL2 document waiting for an approval that binds its hash. */
export interface PendingHash {
  hash: Buffer;
  jobId: string;
  invoice: string;
}

export interface ApprovalStatus {
  tenant: string;
  credentialId: string;
  kind: ApprovalKind;
  via: string;
  approvedBy?: string;
  approvedAt: string;
  granted: number;
  remaining: number;
  drawn: number;
  expiresAt: number;
  fingerprint: string;
}

export { secretFingerprint };

// KEYS[1] the approval; ARGV: wanted, now (ms), margin (ms). Returns {status, count, box, kind, expiresAt, fingerprint}.
const DRAW = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'none'} end
local v = redis.call('HMGET', KEYS[1], 'remaining', 'expiresAt', 'box', 'kind', 'fingerprint')
local remaining = tonumber(v[1])
local expiresAt = tonumber(v[2])
if expiresAt - tonumber(ARGV[3]) <= tonumber(ARGV[2]) then return {'expired'} end
if remaining <= 0 then return {'spent'} end
local take = math.min(tonumber(ARGV[1]), remaining)
redis.call('HINCRBY', KEYS[1], 'remaining', -take)
redis.call('HINCRBY', KEYS[1], 'drawn', take)
return {'ok', take, v[3], v[4], v[2], v[5], remaining - take}
`;

// KEYS[1] the approval, KEYS[2] its bound hashes; ARGV: now (ms), margin (ms), hex hashes...
// Each bound hash is taken once (SREM), so no hash is signed twice under one approval.
const DRAW_BOUND = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'none'} end
local v = redis.call('HMGET', KEYS[1], 'remaining', 'expiresAt', 'box', 'kind', 'fingerprint')
local remaining = tonumber(v[1])
if tonumber(v[2]) - tonumber(ARGV[2]) <= tonumber(ARGV[1]) then return {'expired'} end
if remaining <= 0 then return {'spent'} end
local granted = {}
for i = 3, #ARGV do
  if #granted < remaining and redis.call('SREM', KEYS[2], ARGV[i]) == 1 then
    granted[#granted + 1] = ARGV[i]
  end
end
if #granted == 0 then return {'unbound'} end
redis.call('HINCRBY', KEYS[1], 'remaining', -#granted)
redis.call('HINCRBY', KEYS[1], 'drawn', #granted)
local out = {'ok', v[3], v[4], v[2], v[5], remaining - #granted}
for _, h in ipairs(granted) do out[#out + 1] = h end
return out
`;

/** Records outlive their approval by a day, so a morning report can still say what was left unused. */
const KEEP_AFTER_EXPIRY_MS = 24 * 3600_000;

export class ParkedApprovals {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(tenant: string, credentialId: string): string {
    return `${this.prefix}:approval:${tenant}:${credentialId}`;
  }

  private boundKey(tenant: string, credentialId: string): string {
    return `${this.prefix}:approval-hashes:${tenant}:${credentialId}`;
  }

  private pendingKey(tenant: string, credentialId: string): string {
    return `${this.prefix}:approval-pending:${tenant}:${credentialId}`;
  }

  private static aad(tenant: string, credentialId: string): string {
    return `sealer-approval/v1/${tenant}/${credentialId}`;
  }

  /** The SAD or token of a parked approval, decrypted in memory only. */
  private static open(kek: Buffer, box: string, tenant: string, credentialId: string): string {
    return openBox(
      kek,
      JSON.parse(box) as SealedBox,
      ParkedApprovals.aad(tenant, credentialId),
      `the parked approval of tenant ${tenant}, credential ${credentialId}`,
    ).toString('utf8');
  }

  /** Parks a new approval in place of any earlier one; returns what the earlier one left unused. */
  async park(a: ParkApproval, kek: Buffer): Promise<{ replacedUnused: number }> {
    if (!Number.isInteger(a.numSignatures) || a.numSignatures < 1) {
      throw new RangeError(`numSignatures ${a.numSignatures} is not a count`);
    }
    const key = this.key(a.tenant, a.credentialId);
    const earlier = await this.status(a.tenant, a.credentialId);
    const box = sealBox(kek, a.value, ParkedApprovals.aad(a.tenant, a.credentialId));
    const fields: Record<string, string> = {
      kind: a.kind,
      via: a.via,
      approvedAt: new Date().toISOString(),
      granted: String(a.numSignatures),
      remaining: String(a.numSignatures),
      drawn: '0',
      expiresAt: String(a.expiresAt),
      fingerprint: secretFingerprint(a.value),
      box: JSON.stringify(box),
      ...(a.approvedBy ? { approvedBy: a.approvedBy } : {}),
      ...(a.hashes ? { bound: String(a.hashes.length) } : {}),
    };
    if (a.hashes && a.hashes.length !== a.numSignatures) {
      throw new RangeError(
        `numSignatures ${a.numSignatures} differs from the ${a.hashes.length} bound hashes`,
      );
    }
    const bound = this.boundKey(a.tenant, a.credentialId);
    const multi = this.redis
      .multi()
      .del(key, bound)
      .hset(key, fields)
      .pexpireat(key, a.expiresAt + KEEP_AFTER_EXPIRY_MS);
    if (a.hashes && a.hashes.length > 0) {
      multi.sadd(bound, ...a.hashes.map((h) => h.toString('hex'))).pexpireat(bound, a.expiresAt);
    }
    await multi.exec();
    const stillUsable = earlier && earlier.expiresAt > Date.now();
    return { replacedUnused: stillUsable ? earlier.remaining : 0 };
  }

  /**
   * Takes up to `wanted` signatures; throws ApprovalNeededError when none can be taken. An approval
   * within `marginMs` of its expiry counts as expired, so a batch never leaves with a dying SAD.
   */
  async draw(
    tenant: string,
    credentialId: string,
    wanted: number,
    kek: Buffer,
    marginMs = 0,
  ): Promise<Drawn> {
    const reply = (await this.redis.eval(
      DRAW,
      1,
      this.key(tenant, credentialId),
      String(wanted),
      String(Date.now()),
      String(marginMs),
    )) as [string, number?, string?, string?, string?, string?, number?];
    const [status, count, box, kind, expiresAt, fingerprint, remaining] = reply;
    if (status !== 'ok') throw new ApprovalNeededError(tenant, credentialId, status as 'none');
    const value = ParkedApprovals.open(kek, box!, tenant, credentialId);
    return {
      kind: kind as ApprovalKind,
      value,
      count: Number(count),
      expiresAt: Number(expiresAt),
      fingerprint: fingerprint!,
      remaining: Number(remaining),
    };
  }

  /**
   * SCAL2: takes the signatures of those of `hashes` the approval is bound to (each at most once);
   * throws ApprovalNeededError when it binds none of them, or is spent or expired.
   */
  async drawBound(
    tenant: string,
    credentialId: string,
    hashes: readonly Buffer[],
    kek: Buffer,
    marginMs = 0,
  ): Promise<Drawn> {
    const reply = (await this.redis.eval(
      DRAW_BOUND,
      2,
      this.key(tenant, credentialId),
      this.boundKey(tenant, credentialId),
      String(Date.now()),
      String(marginMs),
      ...hashes.map((h) => h.toString('hex')),
    )) as string[];
    const [status, box, kind, expiresAt, fingerprint, remaining, ...granted] = reply;
    if (status !== 'ok') throw new ApprovalNeededError(tenant, credentialId, status as 'none');
    const value = ParkedApprovals.open(kek, box!, tenant, credentialId);
    return {
      kind: kind as ApprovalKind,
      value,
      count: granted.length,
      expiresAt: Number(expiresAt),
      fingerprint: fingerprint!,
      remaining: Number(remaining),
      hashes: granted.map((h) => Buffer.from(h, 'hex')),
    };
  }

  /**
   * Why no signature could be drawn now (undefined when one could), without drawing: lets a waiting
   * document skip its preparation until an approval can cover it. `hash`: SCAL2, is it bound?
   */
  async unavailable(
    tenant: string,
    credentialId: string,
    marginMs: number,
    hash?: Buffer,
  ): Promise<ApprovalNeededError['reason'] | undefined> {
    const [remaining, expiresAt] = await this.redis.hmget(
      this.key(tenant, credentialId),
      'remaining',
      'expiresAt',
    );
    if (remaining === null || expiresAt === null) return 'none';
    if (Number(expiresAt) - marginMs <= Date.now()) return 'expired';
    if (Number(remaining) <= 0) return 'spent';
    if (hash && !(await this.redis.sismember(this.boundKey(tenant, credentialId), hash.toString('hex')))) {
      return 'unbound';
    }
    return undefined;
  }

  /** SCAL2: remember a document that waits for an approval binding its hash (for `sealer approve`). */
  async addPending(tenant: string, credentialId: string, p: PendingHash): Promise<void> {
    await this.redis.hset(
      this.pendingKey(tenant, credentialId),
      p.hash.toString('hex'),
      JSON.stringify({ jobId: p.jobId, invoice: p.invoice }),
    );
  }

  /** The document is sealed, failed, or waits with another hash: forget this one. */
  async removePending(tenant: string, credentialId: string, hash: Buffer): Promise<void> {
    await this.redis.hdel(this.pendingKey(tenant, credentialId), hash.toString('hex'));
  }

  /** SCAL2 documents waiting for an approval, in a stable order (by hash). */
  async pending(tenant: string, credentialId: string): Promise<PendingHash[]> {
    const raw = await this.redis.hgetall(this.pendingKey(tenant, credentialId));
    return Object.keys(raw)
      .sort()
      .map((hex) => {
        const { jobId, invoice } = JSON.parse(raw[hex]!) as { jobId: string; invoice: string };
        return { hash: Buffer.from(hex, 'hex'), jobId, invoice };
      });
  }

  /**
   * The provider no longer honours the approval with this fingerprint (spent or expired on its side):
   * stop handing it out. A newer approval parked meanwhile is left alone.
   */
  async retire(tenant: string, credentialId: string, fingerprint: string): Promise<boolean> {
    const key = this.key(tenant, credentialId);
    const done = await this.redis.eval(
      `if redis.call('HGET', KEYS[1], 'fingerprint') == ARGV[1] then
         redis.call('HSET', KEYS[1], 'remaining', 0) return 1 end return 0`,
      1,
      key,
      fingerprint,
    );
    return done === 1;
  }

  /** What an approval stands at, without its value; undefined when none is parked. */
  async status(tenant: string, credentialId: string): Promise<ApprovalStatus | undefined> {
    const raw = await this.redis.hgetall(this.key(tenant, credentialId));
    if (!raw.kind) return undefined;
    return {
      tenant,
      credentialId,
      kind: raw.kind as ApprovalKind,
      via: raw.via ?? '',
      approvedBy: raw.approvedBy,
      approvedAt: raw.approvedAt ?? '',
      granted: Number(raw.granted),
      remaining: Number(raw.remaining),
      drawn: Number(raw.drawn),
      expiresAt: Number(raw.expiresAt),
      fingerprint: raw.fingerprint ?? '',
    };
  }

  async list(): Promise<ApprovalStatus[]> {
    const out: ApprovalStatus[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}:approval:*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        // A tenant name has no ':' (job-definition rule); a credential ID may.
        const rest = key.slice(`${this.prefix}:approval:`.length);
        const at = rest.indexOf(':');
        const s = at > 0 ? await this.status(rest.slice(0, at), rest.slice(at + 1)) : undefined;
        if (s) out.push(s);
      }
    } while (cursor !== '0');
    return out.sort((a, b) => `${a.tenant}:${a.credentialId}`.localeCompare(`${b.tenant}:${b.credentialId}`));
  }
}

// What one line of a tenant's audit trail holds, and how a line is written and checked. A line is the
// entry's JSON in a fixed key order (seq, time, tenant, type, the type's fields, prev) with `hash`
// appended last, so a verifier can re-serialise a parsed line and compare bytes, not just values.
import crypto from 'node:crypto';
import { OutboxError } from './outbox';

export class AuditError extends OutboxError {}

export const AUDIT_ENTRY_TYPES = [
  'authorisation',
  'seal',
  'refusal',
  'approval-parked',
  'approval-drawn',
  'factors-stored',
  'key-rotated',
  'renewal',
  'ops-action',
] as const;

export type AuditEntryType = (typeof AUDIT_ENTRY_TYPES)[number];

// Callers pass fingerprints of secrets (sadFingerprint()), never a SAD, token, PIN or key itself: the
// log is read by people and copied around, and the chain makes an entry impossible to redact later.

/** A key authorisation: credentials/authorize, or an approval the tenant gave. */
export interface AuthorisationEntry {
  type: 'authorisation';
  /** custody mode: secret-refs, provider-held, approval, implicit */
  custody: string;
  /** who approved, where the provider or the prompt tells us */
  approvedBy?: string;
  credentialId: string;
  numSignatures: number;
  /** ISO time the SAD or credential-scope token expires */
  expiresAt: string;
  /** sadFingerprint() of the SAD or token */
  sadFingerprint: string;
  scal?: 'SCAL1' | 'SCAL2';
}

export interface SealEntry {
  type: 'seal';
  invoice: string;
  credentialId: string;
  sourceSha256: string;
  sealedSha256: string;
  certificateSerial: string;
  /** the sealed file, relative to the tenant's outbox folder */
  file: string;
}

export interface RefusalEntry {
  type: 'refusal';
  invoice?: string;
  credentialId?: string;
  /** why, as the provider or the check said it (never a secret) */
  reason: string;
  /** e.g. the CSC error code */
  code?: string;
}

/** An approved SAD or token parked (encrypted) for the workers to draw on. */
export interface ApprovalParkedEntry {
  type: 'approval-parked';
  credentialId: string;
  approvedBy?: string;
  numSignatures: number;
  expiresAt: string;
  sadFingerprint: string;
}

/** Signatures drawn from a parked approval. */
export interface ApprovalDrawnEntry {
  type: 'approval-drawn';
  credentialId: string;
  sadFingerprint: string;
  count: number;
  remaining: number;
}

/** Provider-held factors stored (sealer factors set). */
export interface FactorsStoredEntry {
  type: 'factors-stored';
  credentialId: string;
  /** fingerprint of the key-encryption key they were encrypted under */
  kekFingerprint: string;
}

/** Stored factors re-encrypted under a new key-encryption key. */
export interface KeyRotatedEntry {
  type: 'key-rotated';
  fromKekFingerprint: string;
  toKekFingerprint: string;
  credentialIds: string[];
}

/** A delivered file renewed (sealer renew): fresh validation data and a new document timestamp appended. */
export interface RenewalEntry {
  type: 'renewal';
  invoice: string;
  /** the file, relative to the tenant's outbox folder */
  file: string;
  /** SHA-256 hex of the file before and after; the old file is a byte prefix of the new */
  oldSealedSha256: string;
  newSealedSha256: string;
  /** why it was renewed (TSA certificate expiry, missing validation data) */
  reason: string;
  /** ISO genTime of the new document timestamp */
  documentTimestampTime: string;
  /** subject of the TSA certificate that signed it */
  tsa: string;
}

/** What a person did from the ops dashboard (retry, pause, resume), and how it came out. */
export interface OpsActionEntry {
  type: 'ops-action';
  /** retry-invoice, retry-run, pause, resume */
  action: string;
  /** the signed-in dashboard user */
  by: string;
  /** what it acted on: a job ID, a run ID, a tenant, or "all" */
  target: string;
  /** e.g. "requeued 1, already sealed 0" or "error: ..." */
  result: string;
}

export type AuditEntryInput =
  | AuthorisationEntry
  | SealEntry
  | RefusalEntry
  | ApprovalParkedEntry
  | ApprovalDrawnEntry
  | FactorsStoredEntry
  | KeyRotatedEntry
  | RenewalEntry
  | OpsActionEntry;

/** The fields the log adds to every entry. */
export interface AuditChainFields {
  /** 1-based position in the tenant's chain, across month files */
  seq: number;
  /** ISO time (UTC) the entry was appended */
  time: string;
  tenant: string;
  /** SHA-256 hex of the previous line's bytes (without its newline); 64 zeros for the first */
  prev: string;
  /** SHA-256 hex of this line's JSON without the hash field */
  hash: string;
}

export type AuditRecord = AuditEntryInput & AuditChainFields;

export const GENESIS_PREV = '0'.repeat(64);

const RESERVED = new Set(['seq', 'time', 'tenant', 'type', 'prev', 'hash']);
const HEX64 = /^[0-9a-f]{64}$/;
const FINGERPRINT = /^[0-9a-f]{16}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export function sha256Hex(data: string | Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export { secretFingerprint as sadFingerprint } from '../common/fingerprint';

/** The line (without newline) for an entry at `seq` after a line whose SHA-256 is `prev`. */
export function encodeAuditLine(
  entry: AuditEntryInput,
  chain: { seq: number; time: string; tenant: string; prev: string },
): string {
  if (!(AUDIT_ENTRY_TYPES as readonly string[]).includes(entry.type)) {
    throw new AuditError(`unknown audit entry type ${JSON.stringify(entry.type)}`);
  }
  // A SAD passed where its fingerprint belongs would be in the log for good: refuse anything else.
  if ('sadFingerprint' in entry && !FINGERPRINT.test(entry.sadFingerprint)) {
    throw new AuditError('sadFingerprint must be 16 hex digits: pass sadFingerprint(sad), never the SAD');
  }
  // A dashboard action names who did what to what; an entry missing one says nothing an auditor can use.
  if (entry.type === 'ops-action') {
    for (const k of ['action', 'by', 'target', 'result'] as const) {
      if (typeof entry[k] !== 'string' || entry[k] === '') {
        throw new AuditError(`ops-action entry: ${k} must be a non-empty string`);
      }
    }
  }
  const fields = Object.fromEntries(Object.entries(entry).filter(([k]) => !RESERVED.has(k)));
  const body = JSON.stringify({
    seq: chain.seq,
    time: chain.time,
    tenant: chain.tenant,
    type: entry.type,
    ...fields,
    prev: chain.prev,
  });
  return withHash(body, sha256Hex(body));
}

function withHash(body: string, hash: string): string {
  return `${body.slice(0, -1)},"hash":${JSON.stringify(hash)}}`;
}

/**
 * Parses one line and checks it on its own: JSON, the entry's shape, the byte-exact form the log writes,
 * and its hash. Returns the record, or the reason it is bad. The chain (seq, prev) is checked by the caller.
 */
export function parseAuditLine(bytes: Buffer): { record: AuditRecord } | { reason: string } {
  if (bytes.length === 0) return { reason: 'empty line' };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { reason: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { reason: 'not an audit entry (not a JSON object)' };
  }
  const v = value as Record<string, unknown>;
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 1) return { reason: 'seq missing or not >= 1' };
  if (typeof v.time !== 'string' || !ISO_TIME.test(v.time) || Number.isNaN(Date.parse(v.time))) {
    return { reason: 'time missing or not an ISO UTC time' };
  }
  if (typeof v.tenant !== 'string' || v.tenant === '') return { reason: 'tenant missing' };
  if (typeof v.type !== 'string' || !(AUDIT_ENTRY_TYPES as readonly string[]).includes(v.type)) {
    return { reason: `unknown entry type ${JSON.stringify(v.type)}` };
  }
  if (typeof v.prev !== 'string' || !HEX64.test(v.prev)) return { reason: 'prev missing or not SHA-256 hex' };
  if (typeof v.hash !== 'string' || !HEX64.test(v.hash)) return { reason: 'hash missing or not SHA-256 hex' };
  const keys = Object.keys(v);
  if (keys.slice(0, 4).join() !== 'seq,time,tenant,type' || keys.slice(-2).join() !== 'prev,hash') {
    return { reason: 'not in the form the log writes (keys out of order)' };
  }
  const { hash, ...rest } = v;
  const body = JSON.stringify(rest);
  // Same values in another key order or spacing still means someone rewrote the line.
  if (!Buffer.from(withHash(body, hash)).equals(bytes)) {
    return { reason: 'not in the form the log writes (reformatted or duplicated keys)' };
  }
  if (sha256Hex(body) !== hash) return { reason: 'hash mismatch: the entry was edited' };
  return { record: v as unknown as AuditRecord };
}

// What the sandbox CA has issued and revoked, kept in dataDir so that `sealer sandbox revoke` (another
// process) and a running sandbox on the same dataDir agree: `pki/revoked.json` (replaced atomically)
// and `pki/issued.txt` (one serial per line, appended). A running sandbox rereads revoked.json whenever
// its modification time or size changed (one stat per OCSP or CRL request), so a revocation shows at
// once. The OCSP responder says "unknown" for serials it never issued, "good" for issued, unrevoked ones.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileReplacingSync } from '../outbox/atomic-write';
import { SandboxError } from './sandbox-error';
import type { RevocationReason } from './types';

/** CRLReason codes (RFC 5280 section 5.3.1); 7 is unused there. */
export const REVOCATION_REASONS: Record<RevocationReason, number> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
};

export function isRevocationReason(value: string): value is RevocationReason {
  return Object.hasOwn(REVOCATION_REASONS, value);
}

export interface Revocation {
  /** Upper-case hex as the handle shows serials. */
  serialHex: string;
  /** The credential whose certificate it was, when it was one. */
  credentialId?: string;
  revokedAt: Date;
  reason: RevocationReason;
}

const fileSchema = z.object({
  version: z.literal(1),
  revoked: z.array(
    z.object({
      serialHex: z.string().regex(/^[0-9A-F]+$/),
      credentialId: z.string().optional(),
      revokedAt: z.string(),
      reason: z.enum(Object.keys(REVOCATION_REASONS) as [RevocationReason, ...RevocationReason[]]),
    }),
  ),
});

export function pkiPaths(dataDir: string) {
  return {
    revoked: path.join(dataDir, 'pki', 'revoked.json'),
    issued: path.join(dataDir, 'pki', 'issued.txt'),
  };
}

/** Serials compare as upper-case hex without leading zeros (DER INTEGER renderings differ on those). */
export function normaliseSerial(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
}

export class RevocationStore {
  private readonly files: ReturnType<typeof pkiPaths>;
  private cached: { key: string; byserial: Map<string, Revocation> } | undefined;
  private readonly issued = new Set<string>();
  private issuedKey = '';

  constructor(dataDir: string) {
    this.files = pkiPaths(dataDir);
  }

  /** Every revocation in force, reread from disk when the file changed. */
  revocations(): Map<string, Revocation> {
    const key = statKey(this.files.revoked);
    if (this.cached?.key !== key) this.cached = { key, byserial: readRevocations(this.files.revoked) };
    return this.cached.byserial;
  }

  revocationOf(serialHex: string): Revocation | undefined {
    return this.revocations().get(normaliseSerial(serialHex));
  }

  /** Whether the sandbox CA issued this serial (any process on this dataDir, any time). */
  wasIssued(serialHex: string): boolean {
    const key = statKey(this.files.issued);
    if (key !== this.issuedKey) {
      this.issuedKey = key;
      for (const line of readText(this.files.issued).split('\n')) {
        if (line.trim() !== '') this.issued.add(normaliseSerial(line.trim()));
      }
    }
    return this.issued.has(normaliseSerial(serialHex));
  }

  /** Records serials as issued (no-op for those already known). */
  noteIssued(serials: string[]): void {
    const fresh = serials.map(normaliseSerial).filter((s) => !this.wasIssued(s));
    if (fresh.length === 0) return;
    fs.mkdirSync(path.dirname(this.files.issued), { recursive: true });
    fs.appendFileSync(this.files.issued, fresh.map((s) => `${s}\n`).join(''));
    for (const s of fresh) this.issued.add(s);
  }

  /** Adds a revocation; a serial already revoked keeps its first date and reason. Returns what holds. */
  revoke(entry: Revocation): Revocation {
    const serialHex = normaliseSerial(entry.serialHex);
    const current = readRevocations(this.files.revoked);
    const existing = current.get(serialHex);
    if (existing !== undefined) return existing;
    current.set(serialHex, { ...entry, serialHex });
    writeRevocations(this.files.revoked, [...current.values()]);
    this.cached = undefined;
    return { ...entry, serialHex };
  }
}

function statKey(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.mtimeMs}:${st.size}:${st.ino}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new SandboxError(`sandbox file ${file} is unreadable`, { cause: err });
  }
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new SandboxError(`sandbox file ${file} is unreadable`, { cause: err });
  }
}

function readRevocations(file: string): Map<string, Revocation> {
  const text = readText(file);
  const out = new Map<string, Revocation>();
  if (text.trim() === '') return out;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SandboxError(`sandbox revocation list ${file} is not valid JSON`, { cause: err });
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SandboxError(
      `sandbox revocation list ${file} is invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    );
  }
  for (const r of parsed.data.revoked) {
    const revokedAt = new Date(r.revokedAt);
    if (Number.isNaN(revokedAt.getTime())) {
      throw new SandboxError(`sandbox revocation list ${file}: bad revokedAt ${JSON.stringify(r.revokedAt)}`);
    }
    const serialHex = normaliseSerial(r.serialHex);
    out.set(serialHex, { ...r, serialHex, revokedAt });
  }
  return out;
}

function writeRevocations(file: string, entries: Revocation[]): void {
  const body = {
    version: 1,
    revoked: entries.map((e) => ({
      serialHex: e.serialHex,
      ...(e.credentialId === undefined ? {} : { credentialId: e.credentialId }),
      revokedAt: e.revokedAt.toISOString(),
      reason: e.reason,
    })),
  };
  // Not synced: sandbox test material (see THROWAWAY in provisioning.ts).
  writeFileReplacingSync(file, `${JSON.stringify(body, null, 2)}\n`, { durable: false });
}

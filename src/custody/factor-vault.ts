// Custody model "provider-held" (issue 4): a tenant delegates its PIN and TOTP secret to the application
// provider, who keeps them here, encrypted at rest with AES-256-GCM under a key-encryption key (KEK),
// one file per tenant and credential. They are decrypted in memory only, when the worker authorises.
//
// The associated data names the tenant and credential, so a ciphertext moved to another's place does
// not decrypt; the file names its key by a fingerprint, so a wrong key is reported as such. No PIN,
// TOTP secret or KEK ever appears in an error message or a log line.
//
// Part of custody (who may authorise a credential), not of config: config only names the vault and the
// KEK's reference. A vault refusal stays a JobConfigError, so a job that meets one fails as misconfigured
// rather than being retried.
import fs from 'node:fs/promises';
import path from 'node:path';
import { inspect } from 'node:util';
import { z } from 'zod';
import { keyIdOf, openBox, sealBox, type SealedBox } from '../common/aead';
import { sealerCommandLine } from '../common/sealer-command';
import { writeFileReplacing } from '../outbox/atomic-write';
import {
  JobConfigError,
  resolveSecret,
  type JobDefinition,
  type JobDefinitionFields,
  type SecretRef,
} from '../jobs';

/** A factor file is missing, unreadable, altered, under another key, or in another's place. */
export class FactorVaultError extends JobConfigError {}

export type TotpSettings = JobDefinitionFields['signing']['totp'];

/** What a tenant delegates: at least one of PIN and TOTP secret, with the credential's TOTP settings. */
export interface FactorsToStore {
  pin?: string;
  /** Base32; spaces, dashes and lowercase are accepted and normalised away. */
  totpSecret?: string;
  totp: TotpSettings;
}

/** Decrypted factors; the object redacts `pin` and `totpSecret` when logged or inspected. */
export interface StoredFactors extends FactorsToStore {
  tenant: string;
  credentialId: string;
  kekId: string;
  storedAt: string;
}

/** A factor file as `list()` sees it, without decrypting it. */
export interface FactorFileInfo {
  file: string;
  tenant: string;
  credentialId: string;
  kekId: string;
  storedAt: string;
  /** why this file cannot be used (malformed, or not in its own tenant's and credential's place) */
  problem?: string;
}

const FILE_SUFFIX = '.factors.json';

const fileSchema = z.strictObject({
  version: z.literal(1),
  tenant: z.string().min(1),
  credentialId: z.string().min(1),
  kekId: z.string().regex(/^[0-9a-f]{16}$/),
  iv: z.base64(),
  tag: z.base64(),
  ciphertext: z.base64(),
  storedAt: z.string().min(1),
});
type FactorFile = z.infer<typeof fileSchema>;

const totpSchema = z.strictObject({
  digits: z.int().min(6).max(10),
  periodSec: z.int().min(1).max(300),
  algorithm: z.enum(['SHA1', 'SHA256', 'SHA512']),
});
const plaintextSchema = z.strictObject({
  pin: z.string().min(1).optional(),
  totpSecret: z.string().min(1).optional(),
  totp: totpSchema,
});
type Plaintext = z.infer<typeof plaintextSchema>;

// ---------------------------------------------------------------------------------------------------
// The key-encryption key

/**
 * A KEK is 32 bytes, written as 64 hex characters or as base64 (standard or URL-safe). The message of a
 * refusal says what is expected and never repeats the text, which may be a key with a typo.
 */
export function parseKek(text: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(t) || /^[A-Za-z0-9_-]{43}=?$/.test(t)) {
    const key = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
    if (key.length === 32) return key;
  }
  throw new FactorVaultError(
    'the key-encryption key must be 32 bytes, given as 64 hex characters or as base64 (e.g. `openssl rand -hex 32`)',
  );
}

/**
 * Reads a KEK from an `env:` or `file:` reference (a file path relative to `baseDir`). A key file that
 * its group or others may read or write is refused, as ssh refuses such a private key: whoever reads
 * the KEK reads every tenant's delegated factors and parked approvals.
 */
export async function loadKek(
  ref: SecretRef,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Buffer> {
  const text = await resolveSecret(ref, baseDir, env, {
    ownerOnly: { what: `key-encryption key ${ref}` },
  });
  try {
    return parseKek(text);
  } catch (err) {
    throw new FactorVaultError(`key-encryption key ${ref}: ${(err as Error).message}`);
  }
}

/** First 16 hex characters of the SHA-256 of the key: names a key without revealing it. */
export function kekIdOf(kek: Buffer): string {
  return keyIdOf(kek);
}

// ---------------------------------------------------------------------------------------------------
// Validation of what is stored

/** Base32 (RFC 4648) without spaces, dashes or padding, in capitals; refuses anything else. */
function normaliseTotpSecret(secret: string, owner: string): string {
  const s = secret.replace(/[\s-]/g, '').toUpperCase();
  if (!/^[A-Z2-7]+=*$/.test(s)) {
    throw new FactorVaultError(`the TOTP secret of ${owner} is not Base32 (letters A-Z and digits 2-7)`);
  }
  const bare = s.replace(/=+$/, '');
  // 80 bits is the least providers hand out and the least the TOTP code generator accepts; finding out
  // now is better than at 2 a.m.
  if (bare.length < 16) {
    throw new FactorVaultError(
      `the TOTP secret of ${owner} is too short: at least 16 Base32 characters (80 bits)`,
    );
  }
  return bare;
}

function checkFactors(factors: FactorsToStore, owner: string): Plaintext {
  if (factors.pin !== undefined && factors.pin.trim() === '') {
    throw new FactorVaultError(`the PIN of ${owner} is empty; leave it out if the credential needs none`);
  }
  const totpSecret =
    factors.totpSecret === undefined ? undefined : normaliseTotpSecret(factors.totpSecret, owner);
  if (factors.pin === undefined && totpSecret === undefined) {
    throw new FactorVaultError(`nothing to store for ${owner}: give a PIN, a TOTP secret or both`);
  }
  const totp = totpSchema.safeParse(factors.totp);
  if (!totp.success) {
    throw new FactorVaultError(
      `the TOTP settings of ${owner} are invalid: ${totp.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return {
    ...(factors.pin !== undefined ? { pin: factors.pin } : {}),
    ...(totpSecret !== undefined ? { totpSecret } : {}),
    totp: totp.data,
  };
}

function checkName(tenant: string, credentialId: string): void {
  // The tenant is a folder name: the job definition's name rule keeps it one path segment.
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(tenant)) {
    throw new FactorVaultError(`tenant ${JSON.stringify(tenant)} is not a valid tenant name`);
  }
  if (credentialId === '') throw new FactorVaultError(`tenant ${tenant}: the credential ID is empty`);
}

function owner(tenant: string, credentialId: string): string {
  return `tenant ${tenant}, credential ${credentialId}`;
}

/** Binds a ciphertext to its tenant and credential (a tenant name has no slash, so this is unambiguous). */
function aadFor(tenant: string, credentialId: string): string {
  return `sealer-factors/v1/${tenant}/${credentialId}`;
}

/** Keeps the values out of logs and inspection should a caller pass the object along by mistake. */
function redacting(stored: StoredFactors): StoredFactors {
  const shown = () => ({
    ...stored,
    ...(stored.pin !== undefined ? { pin: '[redacted]' } : {}),
    ...(stored.totpSecret !== undefined ? { totpSecret: '[redacted]' } : {}),
  });
  Object.defineProperty(stored, 'toJSON', { value: shown, enumerable: false });
  Object.defineProperty(stored, inspect.custom, { value: () => shown(), enumerable: false });
  return stored;
}

// ---------------------------------------------------------------------------------------------------
// Files

async function ensurePrivateDir(dir: string): Promise<void> {
  // Only the vault folder and below are made private: a parent such as var/ is shared with the outbox.
  await fs.mkdir(path.dirname(dir), { recursive: true });
  await fs.mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  if (((await fs.stat(dir)).mode & 0o077) !== 0) await fs.chmod(dir, 0o700);
}

/** Replaces `file` atomically: a reader sees the old content or the new, never a part. Mode 0600: the
 * ciphertext is still a secret's; the folder is made private by ensurePrivateDir first. */
function writeAtomically(file: string, text: string): Promise<void> {
  return writeFileReplacing(file, text, { mode: 0o600, mkdir: false });
}

async function readFactorFile(file: string): Promise<FactorFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new FactorVaultError(`cannot read factor file ${file}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FactorVaultError(`factor file ${file} is not valid JSON`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))].join(', ');
    throw new FactorVaultError(`factor file ${file} is malformed (${fields})`);
  }
  return parsed.data;
}

function boxOf(f: FactorFile): SealedBox {
  return { keyId: f.kekId, iv: f.iv, tag: f.tag, ciphertext: f.ciphertext };
}

/** Decrypts a factor file read for `tenant`/`credentialId`; every refusal names the file and whose it is. */
function decrypt(kek: Buffer, f: FactorFile, file: string, tenant: string, credentialId: string): Plaintext {
  if (f.tenant !== tenant || f.credentialId !== credentialId) {
    throw new FactorVaultError(
      `factor file ${file} holds the factors of ${owner(f.tenant, f.credentialId)}, not of ${owner(tenant, credentialId)}: factors cannot be moved to another tenant or credential`,
    );
  }
  let plain: Buffer;
  try {
    plain = openBox(
      kek,
      boxOf(f),
      aadFor(tenant, credentialId),
      `factor file ${file} (${owner(tenant, credentialId)})`,
    );
  } catch (err) {
    throw new FactorVaultError((err as Error).message);
  }
  try {
    const parsed = plaintextSchema.safeParse(JSON.parse(plain.toString('utf8')));
    // Never include the parse details: they could quote the decrypted text.
    if (!parsed.success) throw new Error('unexpected form');
    return parsed.data;
  } catch {
    throw new FactorVaultError(
      `the decrypted factors of ${owner(tenant, credentialId)} (${file}) are not in the expected form`,
    );
  } finally {
    plain.fill(0);
  }
}

function encrypt(
  kek: Buffer,
  plain: Plaintext,
  tenant: string,
  credentialId: string,
  storedAt: string,
): string {
  const text = Buffer.from(JSON.stringify(plain), 'utf8');
  try {
    const box = sealBox(kek, text, aadFor(tenant, credentialId));
    const content: FactorFile = {
      version: 1,
      tenant,
      credentialId,
      kekId: box.keyId,
      iv: box.iv,
      tag: box.tag,
      ciphertext: box.ciphertext,
      storedAt,
    };
    return JSON.stringify(content, null, 2) + '\n';
  } finally {
    text.fill(0);
  }
}

/** Where the factors of one tenant's credential live; the credential ID is encoded to stay one file name. */
export function factorFilePath(vaultDir: string, tenant: string, credentialId: string): string {
  checkName(tenant, credentialId);
  return path.join(vaultDir, tenant, `${encodeURIComponent(credentialId)}${FILE_SUFFIX}`);
}

/** Every factor file of the vault (or of one tenant), read without decrypting; a missing vault is empty. */
export async function listFactorFiles(vaultDir: string, tenant?: string): Promise<FactorFileInfo[]> {
  if (tenant !== undefined) checkName(tenant, '-');
  const tenants = tenant !== undefined ? [tenant] : await readdirOrEmpty(vaultDir);
  const out: FactorFileInfo[] = [];
  for (const t of tenants.sort()) {
    const dir = path.join(vaultDir, t);
    for (const name of (await readdirOrEmpty(dir)).filter((n) => n.endsWith(FILE_SUFFIX)).sort()) {
      const file = path.join(dir, name);
      const placedAs = { tenant: t, credentialId: safeDecode(name.slice(0, -FILE_SUFFIX.length)) };
      try {
        const f = await readFactorFile(file);
        const info: FactorFileInfo = {
          file,
          tenant: f.tenant,
          credentialId: f.credentialId,
          kekId: f.kekId,
          storedAt: f.storedAt,
        };
        if (f.tenant !== placedAs.tenant || f.credentialId !== placedAs.credentialId) {
          info.problem = `holds the factors of ${owner(f.tenant, f.credentialId)} but sits in the place of ${owner(placedAs.tenant, placedAs.credentialId)}`;
        }
        out.push(info);
      } catch (err) {
        out.push({ file, ...placedAs, kekId: '?', storedAt: '?', problem: (err as Error).message });
      }
    }
  }
  const key = (f: FactorFileInfo) => `${f.tenant}\u0000${f.credentialId}`;
  return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new FactorVaultError(`cannot read factor vault folder ${dir}`, { cause: err });
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// ---------------------------------------------------------------------------------------------------
// The vault

export class FactorVault {
  readonly kekId: string;

  constructor(
    readonly dir: string,
    private readonly kek: Buffer,
  ) {
    if (kek.length !== 32) throw new FactorVaultError('the key-encryption key must be 32 bytes');
    this.kekId = kekIdOf(kek);
  }

  fileFor(tenant: string, credentialId: string): string {
    return factorFilePath(this.dir, tenant, credentialId);
  }

  /** Encrypts and stores (or replaces) the factors of one tenant's credential. */
  async store(
    tenant: string,
    credentialId: string,
    factors: FactorsToStore,
  ): Promise<{ file: string; kekId: string; storedAt: string }> {
    const file = this.fileFor(tenant, credentialId);
    const plain = checkFactors(factors, owner(tenant, credentialId));
    const storedAt = new Date().toISOString();
    const text = encrypt(this.kek, plain, tenant, credentialId, storedAt);
    try {
      await ensurePrivateDir(this.dir);
      await ensurePrivateDir(path.dirname(file));
      await writeAtomically(file, text);
    } catch (err) {
      if (err instanceof FactorVaultError) throw err;
      throw new FactorVaultError(`cannot write factor file ${file}`, { cause: err });
    }
    return { file, kekId: this.kekId, storedAt };
  }

  /** Decrypts the factors of one tenant's credential, in memory only. */
  async read(tenant: string, credentialId: string): Promise<StoredFactors> {
    const file = this.fileFor(tenant, credentialId);
    try {
      await fs.access(file);
    } catch {
      throw new FactorVaultError(
        `no factors stored for ${owner(tenant, credentialId)} (expected ${file}); store them with: ${sealerCommandLine(`factors set --tenant ${tenant} --credential ${credentialId}`)}`,
      );
    }
    const f = await readFactorFile(file);
    const plain = decrypt(this.kek, f, file, tenant, credentialId);
    return redacting({ tenant, credentialId, ...plain, kekId: f.kekId, storedAt: f.storedAt });
  }

  list(): Promise<FactorFileInfo[]> {
    return listFactorFiles(this.dir);
  }
}

/** The vault a provider-held job uses, with its configured KEK loaded. */
export async function openFactorVault(
  job: JobDefinition,
  env: NodeJS.ProcessEnv = process.env,
): Promise<FactorVault> {
  const custody = job.signing.custody;
  if (custody.mode !== 'provider-held' || job.factorVaultDir === undefined) {
    throw new FactorVaultError(`job ${job.name} (${job.file}) does not use custody provider-held`);
  }
  return new FactorVault(job.factorVaultDir, await loadKek(custody.kek, job.baseDir, env));
}

/** The SAD manager's KeyFactors (src/csc), with every TOTP setting given as the job stored it. */
export function keyFactorsOf(stored: StoredFactors): {
  pin?: string;
  totpSecret?: string;
  totpDigits: number;
  totpPeriod: number;
  totpAlgorithm: TotpSettings['algorithm'];
} {
  return {
    ...(stored.pin !== undefined ? { pin: stored.pin } : {}),
    ...(stored.totpSecret !== undefined ? { totpSecret: stored.totpSecret } : {}),
    totpDigits: stored.totp.digits,
    totpPeriod: stored.totp.periodSec,
    totpAlgorithm: stored.totp.algorithm,
  };
}

// ---------------------------------------------------------------------------------------------------
// Key rotation

/**
 * Re-encrypts every factor file of the vault (or of `options.tenant` only) from `oldKek` to `newKek`.
 * All files are checked first (each must decrypt under the old key, or already under the new one, which
 * is skipped), so a file under neither key stops the rotation before anything is changed; then each file
 * is replaced atomically. An interrupted rotation can simply be run again.
 */
export async function rotateKey(
  vaultDir: string,
  oldKek: Buffer,
  newKek: Buffer,
  options: { tenant?: string } = {},
): Promise<{ files: number; skipped: number }> {
  for (const k of [oldKek, newKek]) {
    if (k.length !== 32) throw new FactorVaultError('a key-encryption key must be 32 bytes');
  }
  const oldId = kekIdOf(oldKek);
  const newId = kekIdOf(newKek);
  if (oldId === newId) throw new FactorVaultError(`the new key is the old key (${oldId})`);

  const infos = await listFactorFiles(vaultDir, options.tenant);
  const todo: { file: string; f: FactorFile; plain: Plaintext }[] = [];
  let skipped = 0;
  const refuse = (file: string, why: string) =>
    new FactorVaultError(`cannot rotate ${file}: ${why}; nothing was changed`);
  for (const info of infos) {
    if (info.problem) throw refuse(info.file, info.problem);
    const f = await readFactorFile(info.file);
    const key = f.kekId === oldId ? oldKek : f.kekId === newId ? newKek : undefined;
    if (!key) {
      throw refuse(
        info.file,
        `${owner(f.tenant, f.credentialId)} is encrypted under key ${f.kekId}, neither the old key ${oldId} nor the new key ${newId}`,
      );
    }
    let plain: Plaintext;
    try {
      plain = decrypt(key, f, info.file, f.tenant, f.credentialId);
    } catch (err) {
      throw refuse(info.file, (err as Error).message);
    }
    if (key === newKek) skipped++;
    else todo.push({ file: info.file, f, plain });
  }
  let done = 0;
  for (const { file, f, plain } of todo) {
    // storedAt says when the tenant's factors were stored, which a rotation does not change.
    try {
      await writeAtomically(file, encrypt(newKek, plain, f.tenant, f.credentialId, f.storedAt));
    } catch (err) {
      throw new FactorVaultError(
        `re-encrypted ${done} of ${todo.length} factor files, then could not write ${file}; run the rotation again (files already under the new key are skipped)`,
        { cause: err },
      );
    }
    done++;
  }
  return { files: todo.length, skipped };
}

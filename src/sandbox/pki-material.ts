// The sandbox's PKI once it knows where it is reached (pkiBase): the root's signing key for OCSP and
// CRLs, the TSA's key and certificate (`tsa/key.pem`, `tsa/cert.pem`), and credential certificates that
// name the current OCSP and CRL URLs. Certificates in dataDir outlive the port a sandbox listened on, so
// at start a certificate whose URLs are not the current ones is re-issued for the same key (new serial;
// the old serial stays "good": it was never revoked). A revoked credential's re-issued certificate is
// revoked too, with the same date and reason, so a restart cannot un-revoke a credential.
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as pkijs from 'pkijs';
import lockfile from 'proper-lockfile';
import { paths, THROWAWAY, type SandboxState } from './provisioning';
import { isRevocationReason, REVOCATION_REASONS, RevocationStore, type Revocation } from './revocation-store';
import { FileExistsError, writeFileExclusive, writeFileReplacing } from '../outbox/atomic-write';
import { SandboxError } from './sandbox-error';
import type { RevocationReason } from './types';
import {
  generateTsaKeyPem,
  issueESealCertificate,
  issueTsaCertificate,
  pkiUrlsOf,
  validityDays,
  type CaMaterial,
  type PkiUrls,
} from './test-ca';

export interface RootSigner {
  der: Buffer;
  cert: pkijs.Certificate;
  key: KeyObject;
}

export interface TsaSigner {
  certPem: string;
  certDer: Buffer;
  cert: pkijs.Certificate;
  key: KeyObject;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
}

export interface PkiMaterial {
  /** What certificates name: `<base>/ocsp`, `<base>/crl/root.crl`, `<base>/ca/root.cer`. */
  base: string;
  urls: Required<PkiUrls>;
  root: RootSigner;
  /** Replaced by rotateTsa. */
  tsa: TsaSigner;
  tsaCertPath: string;
  revocations: RevocationStore;
}

export interface PkiOptions {
  base: string;
  tsaCertificateDays: number;
  crlOnlyCredentials: ReadonlySet<string>;
  now: () => number;
}

export function pkiUrls(base: string): Required<PkiUrls> {
  return { ocspUrl: `${base}/ocsp`, caIssuersUrl: `${base}/ca/root.cer`, crlUrl: `${base}/crl/root.crl` };
}

export async function preparePki(dataDir: string, state: SandboxState, o: PkiOptions): Promise<PkiMaterial> {
  const p = paths(dataDir);
  const rootMaterial: CaMaterial = {
    certPem: await fs.readFile(p.rootCert, 'utf8'),
    keyPem: await fs.readFile(p.rootKey, 'utf8'),
  };
  const rootDer = Buffer.from(new X509Certificate(rootMaterial.certPem).rawData);
  const root: RootSigner = {
    der: rootDer,
    cert: parseCertificate(rootDer),
    key: createPrivateKey(rootMaterial.keyPem),
  };
  const urls = pkiUrls(o.base);
  const revocations = new RevocationStore(dataDir);

  for (const cred of state.credentials.values()) {
    const id = cred.public.credentialId;
    const wanted: PkiUrls = o.crlOnlyCredentials.has(id) ? { ...urls, ocspUrl: undefined } : urls;
    const current = new X509Certificate(new Uint8Array(cred.certificateDer));
    revocations.noteIssued([cred.public.certificateSerialHex]);
    if (sameUrls(pkiUrlsOf(current), wanted)) continue;
    const certPath = p.credentialCert(id);
    // Under a lock, and rereading the file first: sandboxes starting at once on one dataDir with the
    // same base then serve one certificate, not one each.
    const pem = await withLock(certPath, async () => {
      const onDisk = await fs.readFile(certPath, 'utf8');
      const stored = new X509Certificate(onDisk);
      if (sameUrls(pkiUrlsOf(stored), wanted) && samePublicKey(stored, current)) {
        return onDisk;
      }
      const issued = await issueESealCertificate(rootMaterial, cred.public.keyType, current.subjectName, {
        keyPem: await fs.readFile(p.credentialKey(id), 'utf8'),
        urls: wanted,
      });
      await writeAtomically(certPath, issued.certPem);
      return issued.certPem;
    });
    const cert = new X509Certificate(pem);
    const serialHex = cert.serialNumber.toUpperCase();
    revocations.noteIssued([serialHex]);
    const old = revocations.revocationOf(cred.public.certificateSerialHex);
    if (old !== undefined) revocations.revoke({ ...old, serialHex, credentialId: id });
    cred.certificateDer = Buffer.from(cert.rawData);
    cred.chainDer = [cred.certificateDer, rootDer];
    cred.public.certificateSerialHex = serialHex;
    cred.notBefore = cert.notBefore;
    cred.notAfter = cert.notAfter;
  }

  for (const cred of state.credentials.values()) {
    cred.isRevoked = () => revocations.revocationOf(cred.public.certificateSerialHex) !== undefined;
  }

  const pki: PkiMaterial = {
    base: o.base,
    urls,
    root,
    tsa: await loadOrIssueTsa(dataDir, rootMaterial, o.tsaCertificateDays, o.now(), urls, revocations),
    tsaCertPath: p.tsaCert,
    revocations,
  };
  return pki;
}

/** Issues a new TSA certificate of `days` validity for the TSA's key and makes it the one in force. */
export async function rotateTsa(
  dataDir: string,
  pki: PkiMaterial,
  days: number,
  nowMs: number,
): Promise<void> {
  checkDays(days);
  // (No lock: a rotation is a test's deliberate act on its own sandbox.)
  const p = paths(dataDir);
  const root: CaMaterial = {
    certPem: await fs.readFile(p.rootCert, 'utf8'),
    keyPem: await fs.readFile(p.rootKey, 'utf8'),
  };
  const keyPem = await fs.readFile(p.tsaKey, 'utf8');
  pki.tsa = await issueTsa(p.tsaCert, root, keyPem, days, nowMs, pki.urls, pki.revocations);
}

async function loadOrIssueTsa(
  dataDir: string,
  root: CaMaterial,
  days: number,
  nowMs: number,
  urls: Required<PkiUrls>,
  revocations: RevocationStore,
): Promise<TsaSigner> {
  checkDays(days);
  const p = paths(dataDir);
  let keyPem = await fs.readFile(p.tsaKey, 'utf8').catch(() => undefined);
  if (keyPem === undefined) {
    // An exclusive write fails if another sandbox wrote the key first: then its key stands.
    const fresh = await generateTsaKeyPem();
    await writeFileExclusive(p.tsaKey, fresh, { ...THROWAWAY, mode: 0o600, mkdir: 0o700 }).catch(
      (err: unknown) => {
        if (!(err instanceof FileExistsError)) throw err;
      },
    );
    keyPem = await fs.readFile(p.tsaKey, 'utf8');
  }
  const tsaKey = keyPem;
  return withLock(p.tsaCert, async () => {
    const stored = await fs.readFile(p.tsaCert, 'utf8').catch(() => undefined);
    if (stored !== undefined && (await tsaCertStillFits(stored, tsaKey, root, days, nowMs, urls))) {
      const signer = tsaSigner(stored, tsaKey);
      revocations.noteIssued([signer.serialHex]);
      return signer;
    }
    return issueTsa(p.tsaCert, root, tsaKey, days, nowMs, urls, revocations);
  });
}

async function issueTsa(
  certPath: string,
  root: CaMaterial,
  keyPem: string,
  days: number,
  nowMs: number,
  urls: Required<PkiUrls>,
  revocations: RevocationStore,
): Promise<TsaSigner> {
  const issued = await issueTsaCertificate(root, keyPem, days, nowMs, urls);
  await fs.mkdir(path.dirname(certPath), { recursive: true, mode: 0o700 });
  await writeAtomically(certPath, issued.certPem);
  revocations.noteIssued([issued.serialHex]);
  return tsaSigner(issued.certPem, keyPem);
}

async function tsaCertStillFits(
  certPem: string,
  keyPem: string,
  root: CaMaterial,
  days: number,
  nowMs: number,
  urls: Required<PkiUrls>,
): Promise<boolean> {
  try {
    const cert = new X509Certificate(certPem);
    const rootCert = new X509Certificate(root.certPem);
    if (!(await cert.verify({ publicKey: rootCert.publicKey, signatureOnly: true }))) return false;
    // A TSA key replaced by hand makes the stored certificate useless.
    const ownSpki = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
    if (!Buffer.from(cert.publicKey.rawData).equals(ownSpki)) return false;
    return (
      validityDays(cert) === days &&
      nowMs >= cert.notBefore.getTime() &&
      nowMs < cert.notAfter.getTime() &&
      sameUrls(pkiUrlsOf(cert), urls)
    );
  } catch {
    return false;
  }
}

function tsaSigner(certPem: string, keyPem: string): TsaSigner {
  const cert = new X509Certificate(certPem);
  const der = Buffer.from(cert.rawData);
  return {
    certPem,
    certDer: der,
    cert: parseCertificate(der),
    key: createPrivateKey(keyPem),
    serialHex: cert.serialNumber.toUpperCase(),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

function sameUrls(
  got: { ocspUrl?: string; caIssuersUrl?: string; crlUrl?: string },
  wanted: PkiUrls,
): boolean {
  return (
    got.ocspUrl === wanted.ocspUrl && got.caIssuersUrl === wanted.caIssuersUrl && got.crlUrl === wanted.crlUrl
  );
}

function checkDays(days: number): void {
  if (!(Number.isInteger(days) && days >= 1 && days <= 36500)) {
    throw new SandboxError(
      `TSA certificate validity must be a whole number of days from 1 to 36500, got ${days}`,
    );
  }
}

function samePublicKey(a: X509Certificate, b: X509Certificate): boolean {
  return Buffer.from(a.publicKey.rawData).equals(Buffer.from(b.publicKey.rawData));
}

/**
 * Runs `fn` holding an exclusive lock on `file` (proper-lockfile: a `<file>.lock` folder made with
 * mkdir, kept fresh while held). A lock untouched for 30 s was left by a crashed process and is taken
 * over; waiting gives up after 60 s.
 */
async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(file, {
      lockfilePath: `${file}.lock`,
      realpath: false, // the file itself may not exist yet
      stale: 30_000,
      retries: { retries: 3000, factor: 1, minTimeout: 20, maxTimeout: 20, maxRetryTime: 60_000 },
      // Losing the lock to a takeover only means two sandboxes may issue one certificate each; both
      // stay valid, so it is not worth the default of throwing from a timer.
      onCompromised: () => undefined,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new SandboxError(`sandbox lock ${file}.lock is held for too long`, { cause: err });
    }
    throw err;
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

export function parseCertificate(der: Buffer): pkijs.Certificate {
  const asn1 = asn1js.fromBER(new Uint8Array(der));
  if (asn1.offset === -1) throw new SandboxError('sandbox certificate is not DER');
  return new pkijs.Certificate({ schema: asn1.result });
}

function writeAtomically(file: string, text: string): Promise<void> {
  return writeFileReplacing(file, text, THROWAWAY);
}

/**
 * `sealer sandbox revoke`: marks the credential's certificate in dataDir (`credentials/<id>/cert.pem`,
 * the one the last started sandbox issued) revoked; a sandbox running on that dataDir sees it at its
 * next OCSP or CRL request. Returns the revocation that holds (an earlier one of that serial wins).
 */
export async function revokeCredentialInDataDir(
  dataDir: string,
  credentialId: string,
  reason: RevocationReason = 'unspecified',
  at: Date = new Date(),
): Promise<Revocation> {
  if (!isRevocationReason(reason)) {
    throw new SandboxError(
      `unknown revocation reason ${JSON.stringify(reason)} (${Object.keys(REVOCATION_REASONS).join(', ')})`,
    );
  }
  const certPath = paths(dataDir).credentialCert(credentialId);
  if (!/^[A-Za-z0-9._-]+$/.test(credentialId))
    throw new SandboxError(`bad credential ID ${JSON.stringify(credentialId)}`);
  const pem = await fs.readFile(certPath, 'utf8').catch((err: unknown) => {
    throw new SandboxError(`no credential ${credentialId} in sandbox dataDir ${dataDir} (${certPath})`, {
      cause: err,
    });
  });
  const serialHex = new X509Certificate(pem).serialNumber.toUpperCase();
  return new RevocationStore(dataDir).revoke({ serialHex, credentialId, revokedAt: at, reason });
}

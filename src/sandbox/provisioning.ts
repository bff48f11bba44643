// The sandbox's persistent state in dataDir: provisions tenants, keys, certificates and secrets on first
// start and loads them on every later one, so a restart keeps the same certificates and secrets.
// Layout: state.json (no secrets), ca/, credentials/<id>/{key,cert}.pem, secrets/<tenant>/... (0600).
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { createPrivateKey, randomBytes, randomInt, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateSecret } from 'otplib';
import { z } from 'zod';
import { SIGN_ALGOS, type SandboxKeyType } from './oids';
import { SandboxError } from './sandbox-error';
import { createRootCa, generalizedTime, issueESealCertificate, toRfc4514, type CaMaterial } from './test-ca';
import type { SandboxCredential } from './types';

const STATE_VERSION = 1;

interface CredentialPlan {
  credentialId: string;
  keyType: SandboxKeyType;
  scal: 1 | 2;
  multisign: number;
}

interface TenantPlan {
  tenant: string;
  clientId: string;
  organization: string;
  organizationIdentifier: string;
  credentials: CredentialPlan[];
}

/** What a fresh dataDir gets. organizationIdentifier: "NTR" + JP + the 13-digit corporate number. */
export const DEFAULT_TENANTS: readonly TenantPlan[] = [
  {
    tenant: 'sakura',
    clientId: 'sakura-app',
    organization: 'Sakura Shoji K.K.',
    organizationIdentifier: 'NTRJP-1234567890123',
    credentials: [{ credentialId: 'sakura-eseal-rsa', keyType: 'rsa-2048', scal: 1, multisign: 500 }],
  },
  {
    tenant: 'fuji',
    clientId: 'fuji-app',
    organization: 'Fuji Denki K.K.',
    organizationIdentifier: 'NTRJP-9876543210987',
    credentials: [
      { credentialId: 'fuji-eseal-ec', keyType: 'ecdsa-p256', scal: 1, multisign: 500 },
      { credentialId: 'fuji-eseal-ec-scal2', keyType: 'ecdsa-p256', scal: 2, multisign: 500 },
    ],
  },
];

const stateSchema = z.object({
  version: z.literal(STATE_VERSION),
  tenants: z.array(
    z.object({
      tenant: z.string().min(1),
      clientId: z.string().min(1),
      organization: z.string().min(1),
      organizationIdentifier: z.string().min(1),
    }),
  ),
  credentials: z.array(
    z.object({
      tenant: z.string().min(1),
      credentialId: z.string().min(1),
      keyType: z.enum(['rsa-2048', 'ecdsa-p256']),
      scal: z.union([z.literal(1), z.literal(2)]),
      multisign: z.number().int().positive(),
    }),
  ),
});
type StateFile = z.infer<typeof stateSchema>;

export interface LoadedTenant {
  tenant: string;
  clientId: string;
  clientSecret: string;
}

/** Everything the HTTP side needs about one credential; secrets stay in memory only. */
export interface LoadedCredential {
  /** What the handle shows of the credential (the TOTP period is a server option, added there). */
  public: Omit<SandboxCredential, 'totpPeriodSec'>;
  privateKey: KeyObject;
  /** Raw P-256 private scalar for prehash-less ECDSA; undefined for RSA keys. */
  ecPrivateScalar?: Uint8Array;
  pin: string;
  totpSecret: string;
  certificateDer: Buffer;
  chainDer: Buffer[];
  signAlgos: readonly string[];
  keyLength: number;
  subjectDN: string;
  issuerDN: string;
  notBefore: Date;
  notAfter: Date;
}

export interface SandboxState {
  rootCertPath: string;
  rootCertPem: string;
  tenantsByClientId: Map<string, LoadedTenant>;
  credentials: Map<string, LoadedCredential>;
  provisioned: boolean;
}

export async function loadOrProvision(
  dataDir: string,
  multisignOverride: Record<string, number> = {},
): Promise<SandboxState> {
  const statePath = path.join(dataDir, 'state.json');
  let state: StateFile;
  let provisioned = false;
  const raw = await readFile(statePath, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new SandboxError(`cannot read sandbox state ${statePath}`, { cause: err });
  });
  if (raw === undefined) {
    state = await provision(dataDir, DEFAULT_TENANTS);
    provisioned = true;
  } else {
    state = parseState(statePath, raw);
  }
  return load(dataDir, state, multisignOverride, provisioned);
}

function parseState(statePath: string, raw: string): StateFile {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new SandboxError(`sandbox state ${statePath} is not valid JSON`, { cause: err });
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SandboxError(
      `sandbox state ${statePath} is invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    );
  }
  return parsed.data;
}

async function provision(dataDir: string, plan: readonly TenantPlan[]): Promise<StateFile> {
  await mkdir(path.join(dataDir, 'ca'), { recursive: true });
  const root = await createRootCa();
  await writeFile(paths(dataDir).rootCert, root.certPem);
  await writePrivate(paths(dataDir).rootKey, root.keyPem);

  const state: StateFile = { version: STATE_VERSION, tenants: [], credentials: [] };
  for (const tenant of plan) {
    await writePrivate(paths(dataDir).clientSecret(tenant.tenant), randomBytes(24).toString('base64url'));
    state.tenants.push({
      tenant: tenant.tenant,
      clientId: tenant.clientId,
      organization: tenant.organization,
      organizationIdentifier: tenant.organizationIdentifier,
    });
    for (const cred of tenant.credentials) {
      await provisionCredential(dataDir, root, tenant, cred);
      state.credentials.push({ tenant: tenant.tenant, ...cred });
    }
  }
  // state.json is written last and atomically: its presence means provisioning finished.
  const statePath = path.join(dataDir, 'state.json');
  await writeFile(`${statePath}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  await rename(`${statePath}.tmp`, statePath);
  return state;
}

async function provisionCredential(
  dataDir: string,
  root: CaMaterial,
  tenant: TenantPlan,
  cred: CredentialPlan,
): Promise<void> {
  const p = paths(dataDir);
  const issued = await issueESealCertificate(root, cred.keyType, {
    organization: tenant.organization,
    organizationIdentifier: tenant.organizationIdentifier,
    commonName: `${tenant.organization} e-Seal`,
  });
  await mkdir(path.dirname(p.credentialCert(cred.credentialId)), { recursive: true });
  await writeFile(p.credentialCert(cred.credentialId), issued.certPem);
  await writePrivate(p.credentialKey(cred.credentialId), issued.keyPem);
  await writePrivate(
    p.pin(tenant.tenant, cred.credentialId),
    String(randomInt(0, 1_000_000)).padStart(6, '0'),
  );
  await writePrivate(p.totp(tenant.tenant, cred.credentialId), generateSecret());
}

async function load(
  dataDir: string,
  state: StateFile,
  multisignOverride: Record<string, number>,
  provisioned: boolean,
): Promise<SandboxState> {
  const p = paths(dataDir);
  const tenantsByClientId = new Map<string, LoadedTenant>();
  const clientIdByTenant = new Map<string, string>();
  for (const t of state.tenants) {
    const clientSecret = await readSecret(p.clientSecret(t.tenant));
    tenantsByClientId.set(t.clientId, { tenant: t.tenant, clientId: t.clientId, clientSecret });
    clientIdByTenant.set(t.tenant, t.clientId);
  }
  for (const id of Object.keys(multisignOverride)) {
    const value = multisignOverride[id];
    if (!state.credentials.some((c) => c.credentialId === id)) {
      throw new SandboxError(`multisign override names unknown credential ${JSON.stringify(id)}`);
    }
    if (value === undefined || !Number.isInteger(value) || value < 1) {
      throw new SandboxError(`multisign override for ${id} must be a positive integer, got ${value}`);
    }
  }

  const rootCertPem = await readRequired(p.rootCert);
  const rootDer = Buffer.from(new X509Certificate(rootCertPem).rawData);
  const credentials = new Map<string, LoadedCredential>();
  for (const c of state.credentials) {
    const clientId = clientIdByTenant.get(c.tenant);
    if (clientId === undefined) {
      throw new SandboxError(
        `sandbox state names credential ${c.credentialId} of unknown tenant ${c.tenant}`,
      );
    }
    const certPem = await readRequired(p.credentialCert(c.credentialId));
    const cert = new X509Certificate(certPem);
    const privateKey = createPrivateKey(await readRequired(p.credentialKey(c.credentialId)));
    const pub: LoadedCredential['public'] = {
      tenant: c.tenant,
      clientId,
      credentialId: c.credentialId,
      keyType: c.keyType,
      scal: c.scal,
      multisign: multisignOverride[c.credentialId] ?? c.multisign,
      certificateSerialHex: cert.serialNumber.toUpperCase(),
      clientSecretFile: p.clientSecret(c.tenant),
      pinFile: p.pin(c.tenant, c.credentialId),
      totpSecretFile: p.totp(c.tenant, c.credentialId),
    };
    const certificateDer = Buffer.from(cert.rawData);
    credentials.set(c.credentialId, {
      public: pub,
      privateKey,
      ecPrivateScalar: c.keyType === 'ecdsa-p256' ? ecScalar(privateKey) : undefined,
      pin: await readSecret(pub.pinFile),
      totpSecret: await readSecret(pub.totpSecretFile),
      certificateDer,
      chainDer: [certificateDer, rootDer],
      signAlgos: SIGN_ALGOS[c.keyType],
      keyLength: c.keyType === 'rsa-2048' ? (privateKey.asymmetricKeyDetails?.modulusLength ?? 2048) : 256,
      subjectDN: toRfc4514(cert.subjectName),
      issuerDN: toRfc4514(cert.issuerName),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
    });
  }
  return { rootCertPath: p.rootCert, rootCertPem, tenantsByClientId, credentials, provisioned };
}

export function certValidity(cred: LoadedCredential, now = new Date()): 'valid' | 'expired' {
  return now < cred.notBefore || now > cred.notAfter ? 'expired' : 'valid';
}

export function certFacts(cred: LoadedCredential) {
  return {
    issuerDN: cred.issuerDN,
    serialNumber: cred.public.certificateSerialHex,
    subjectDN: cred.subjectDN,
    validFrom: generalizedTime(cred.notBefore),
    validTo: generalizedTime(cred.notAfter),
  };
}

function ecScalar(key: KeyObject): Uint8Array {
  const d = key.export({ format: 'jwk' }).d;
  if (d === undefined) throw new SandboxError('EC private key has no private scalar');
  return new Uint8Array(Buffer.from(d, 'base64url'));
}

function paths(dataDir: string) {
  const secrets = path.join(dataDir, 'secrets');
  return {
    rootCert: path.join(dataDir, 'ca', 'root.pem'),
    rootKey: path.join(dataDir, 'ca', 'root-key.pem'),
    credentialCert: (id: string) => path.join(dataDir, 'credentials', id, 'cert.pem'),
    credentialKey: (id: string) => path.join(dataDir, 'credentials', id, 'key.pem'),
    clientSecret: (tenant: string) => path.join(secrets, tenant, 'client-secret'),
    pin: (tenant: string, id: string) => path.join(secrets, tenant, `${id}.pin`),
    totp: (tenant: string, id: string) => path.join(secrets, tenant, `${id}.totp`),
  };
}

/** Secret and key files: directory 0700, file 0600, value plus one trailing newline. */
async function writePrivate(file: string, value: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const text = value.endsWith('\n') ? value : `${value}\n`;
  await writeFile(file, text, { mode: 0o600 });
  await chmod(file, 0o600); // writeFile's mode only applies when it creates the file
}

async function readRequired(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new SandboxError(`sandbox file ${file} is missing or unreadable`, { cause: err });
  }
}

async function readSecret(file: string): Promise<string> {
  const value = (await readRequired(file)).trim();
  if (value === '') throw new SandboxError(`sandbox secret file ${file} is empty`);
  return value;
}

// The sandbox's persistent state in dataDir: provisions tenants, keys, certificates and secrets on first
// start and loads them on every later one, so a restart keeps the same certificates and secrets.
// Layout: state.json (no secrets), ca/, credentials/<id>/{key,cert}.pem, secrets/<tenant>/... (0600),
// tls/server.pem (only once the sandbox has served HTTPS). A credential added to DEFAULT_TENANTS after a
// dataDir was made is provisioned into it on its next load.
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import {
  createPrivateKey,
  randomBytes,
  randomInt,
  X509Certificate as NodeX509Certificate,
  type KeyObject,
} from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { generateSecret } from 'otplib';
import { z } from 'zod';
import { SIGN_ALGOS, type SandboxKeyType } from './oids';
import { FileExistsError, writeFileExclusive, writeFileReplacing } from '../outbox/atomic-write';
import { SandboxError } from './sandbox-error';

// The sandbox's files are test material: written whole (atomic-write.ts), without the fsyncs that
// make the outbox survive a power cut and would only slow every test that provisions a sandbox.
export const THROWAWAY = { durable: false } as const;
import {
  createRootCa,
  generalizedTime,
  issueESealCertificate,
  issueTlsServerCertificate,
  toRfc4514,
  type CaMaterial,
} from './test-ca';
import type { SandboxAuthMode, SandboxCredential } from './types';

const STATE_VERSION = 1;

interface CredentialPlan {
  credentialId: string;
  keyType: SandboxKeyType;
  scal: 1 | 2;
  multisign: number;
  /** CSC auth mode: `explicit` (PIN AND OTP in authData) unless given; `implicit` has no factors at all. */
  authMode?: SandboxAuthMode;
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
    credentials: [
      { credentialId: 'sakura-eseal-rsa', keyType: 'rsa-2048', scal: 1, multisign: 500 },
      // Authorised by the service authentication alone (CSC auth mode "implicit"): no PIN, no OTP.
      {
        credentialId: 'sakura-eseal-implicit',
        keyType: 'rsa-2048',
        scal: 1,
        multisign: 500,
        authMode: 'implicit',
      },
    ],
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

/**
 * Provisioned only when asked (`SandboxOptions.benchTenant`, `sealer sandbox --bench-tenant`; kept in the
 * dataDir from then on): credentials with a `multisign` so large that one authorisation per TOTP step
 * (30 s) is no ceiling for a benchmark (at 500 it would be 16.7 invoices/s). Not in DEFAULT_TENANTS: an
 * RSA key costs ~0.2 s of CPU to make, which every fresh dataDir (every test's) would pay.
 */
export const BENCH_TENANT: TenantPlan = {
  tenant: 'bench',
  clientId: 'bench-app',
  organization: 'Bench Shoji K.K.',
  organizationIdentifier: 'NTRJP-5555555555555',
  credentials: [
    { credentialId: 'bench-eseal-rsa', keyType: 'rsa-2048', scal: 1, multisign: 100_000 },
    { credentialId: 'bench-eseal-ec', keyType: 'ecdsa-p256', scal: 1, multisign: 100_000 },
  ],
};

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
      /** Absent in state files written before implicit credentials existed: explicit. */
      authMode: z.enum(['explicit', 'implicit']).optional(),
    }),
  ),
});
type StateFile = z.infer<typeof stateSchema>;

export interface LoadedTenant {
  tenant: string;
  clientId: string;
  clientSecret: string;
  /** CSC auth/login (HTTP Basic) user of the tenant's application. */
  loginUser: string;
  loginPassword: string;
  /** A long-lived API token accepted as a Bearer token, as providers issue for unattended use. */
  apiToken: string;
}

/** Everything the HTTP side needs about one credential; secrets stay in memory only. */
export interface LoadedCredential {
  /** What the handle shows of the credential (the TOTP period is a server option, added there). */
  public: Omit<SandboxCredential, 'totpPeriodSec'>;
  privateKey: KeyObject;
  /** Raw P-256 private scalar for prehash-less ECDSA; undefined for RSA keys. */
  ecPrivateScalar?: Uint8Array;
  /**
   * The factors of an explicit credential. An implicit one has none: these are then random values made
   * at load, kept in memory only and known to nobody (not its files' values either), so no PIN or OTP
   * can ever match them, on the approval page or anywhere else.
   */
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
  /** Set once the PKI is ready (pki-material.ts): whether the current certificate is revoked. */
  isRevoked?: () => boolean;
}

export interface SandboxState {
  rootCertPath: string;
  rootCertPem: string;
  tenantsByClientId: Map<string, LoadedTenant>;
  tenantsByLoginUser: Map<string, LoadedTenant>;
  credentials: Map<string, LoadedCredential>;
  provisioned: boolean;
}

export async function loadOrProvision(
  dataDir: string,
  multisignOverride: Record<string, number> = {},
  options: { benchTenant?: boolean } = {},
): Promise<SandboxState> {
  // Tenants made on request: added to a dataDir that lacks them (the default ones never are).
  const extra: readonly TenantPlan[] = options.benchTenant === true ? [BENCH_TENANT] : [];
  const statePath = path.join(dataDir, 'state.json');
  let state: StateFile;
  let provisioned = false;
  const raw = await readFile(statePath, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new SandboxError(`cannot read sandbox state ${statePath}`, { cause: err });
  });
  if (raw === undefined) {
    state = await provision(dataDir, [...DEFAULT_TENANTS, ...extra]);
    provisioned = true;
  } else {
    state = await provisionMissing(dataDir, parseState(statePath, raw), DEFAULT_TENANTS, extra);
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
  await writeFileReplacing(paths(dataDir).rootCert, root.certPem, THROWAWAY);
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
      state.credentials.push(stateEntry(tenant, cred));
    }
  }
  // state.json is written last and atomically: its presence means provisioning finished.
  await writeState(dataDir, state);
  return state;
}

/**
 * Adds to an existing dataDir the default credentials it lacks (those added to DEFAULT_TENANTS after it
 * was made), of tenants it already has, and the `extra` tenants (made on request) it lacks, with their
 * credentials; its own tenants, credentials and secrets are left as they are.
 * A credential's key and certificate are made in a temp folder and renamed into place, and a new
 * tenant's client secret is created once (ensureSecret), so when two sandboxes upgrade one dataDir at
 * once, one of each wins whole and both record the same state.
 */
async function provisionMissing(
  dataDir: string,
  state: StateFile,
  plan: readonly TenantPlan[],
  extra: readonly TenantPlan[] = [],
): Promise<StateFile> {
  const newTenants = extra.filter((tenant) => !state.tenants.some((t) => t.tenant === tenant.tenant));
  const missing = [...plan, ...extra].flatMap((tenant) =>
    state.tenants.some((t) => t.tenant === tenant.tenant) || newTenants.includes(tenant)
      ? tenant.credentials
          .filter((c) => !state.credentials.some((s) => s.credentialId === c.credentialId))
          .map((cred) => ({ tenant, cred }))
      : [],
  );
  if (missing.length === 0 && newTenants.length === 0) return state;
  const p = paths(dataDir);
  const root: CaMaterial = { certPem: await readRequired(p.rootCert), keyPem: await readRequired(p.rootKey) };
  const tenants = [...state.tenants];
  for (const tenant of newTenants) {
    await ensureSecret(p.clientSecret(tenant.tenant), () => randomBytes(24).toString('base64url'));
    tenants.push({
      tenant: tenant.tenant,
      clientId: tenant.clientId,
      organization: tenant.organization,
      organizationIdentifier: tenant.organizationIdentifier,
    });
  }
  const credentials = [...state.credentials];
  for (const { tenant, cred } of missing) {
    // Organisation names as this dataDir recorded them, so the new certificate names the same company.
    const recorded = tenants.find((t) => t.tenant === tenant.tenant);
    const owner: TenantPlan = { ...tenant, ...recorded, credentials: [] };
    await provisionCredentialOnce(dataDir, root, owner, cred);
    credentials.push(stateEntry(owner, cred));
  }
  const upgraded: StateFile = { ...state, tenants, credentials };
  await writeState(dataDir, upgraded);
  return upgraded;
}

async function provisionCredentialOnce(
  dataDir: string,
  root: CaMaterial,
  tenant: TenantPlan,
  cred: CredentialPlan,
): Promise<void> {
  const final = path.dirname(paths(dataDir).credentialCert(cred.credentialId));
  if (await exists(paths(dataDir).credentialCert(cred.credentialId))) return;
  await mkdir(path.dirname(final), { recursive: true });
  const staging = await mkdtemp(path.join(path.dirname(final), `.${cred.credentialId}.`));
  try {
    await provisionCredential(dataDir, root, tenant, cred, { credentialDir: staging });
    try {
      await rename(staging, final);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Another sandbox on this dataDir provisioned it first: its key and certificate stand.
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

function stateEntry(tenant: TenantPlan, cred: CredentialPlan): StateFile['credentials'][number] {
  return {
    tenant: tenant.tenant,
    credentialId: cred.credentialId,
    keyType: cred.keyType,
    scal: cred.scal,
    multisign: cred.multisign,
    ...(cred.authMode === 'implicit' ? { authMode: 'implicit' as const } : {}),
  };
}

async function writeState(dataDir: string, state: StateFile): Promise<void> {
  await writeFileReplacing(
    path.join(dataDir, 'state.json'),
    `${JSON.stringify(state, null, 2)}\n`,
    THROWAWAY,
  );
}

async function exists(file: string): Promise<boolean> {
  return readFile(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw new SandboxError(`sandbox file ${file} is unreadable`, { cause: err });
    },
  );
}

/** Key, certificate, PIN and TOTP secret files; `credentialDir` overrides where the key and certificate
 * go (a staging folder, see provisionCredentialOnce). */
async function provisionCredential(
  dataDir: string,
  root: CaMaterial,
  tenant: TenantPlan,
  cred: CredentialPlan,
  where: { credentialDir?: string } = {},
): Promise<void> {
  const p = paths(dataDir);
  const issued = await issueESealCertificate(root, cred.keyType, {
    organization: tenant.organization,
    organizationIdentifier: tenant.organizationIdentifier,
    commonName: `${tenant.organization} e-Seal`,
  });
  const dir = where.credentialDir ?? path.dirname(p.credentialCert(cred.credentialId));
  await mkdir(dir, { recursive: true });
  await writeFileReplacing(path.join(dir, 'cert.pem'), issued.certPem, THROWAWAY);
  await writePrivate(path.join(dir, 'key.pem'), issued.keyPem);
  // ensureSecret: when two sandboxes upgrade one dataDir at once, the first PIN and secret stand.
  if (cred.authMode === 'implicit') {
    // Nothing to know: the service token is the authorisation. The files exist all the same, as for
    // every credential (readers of SandboxCredential expect them), holding random values that are no
    // PIN and no TOTP secret and that the sandbox never accepts (see LoadedCredential.pin).
    for (const file of [p.pin(tenant.tenant, cred.credentialId), p.totp(tenant.tenant, cred.credentialId)]) {
      await ensureSecret(file, () => `not-a-factor-${randomBytes(18).toString('base64url')}`);
    }
    return;
  }
  await ensureSecret(p.pin(tenant.tenant, cred.credentialId), () =>
    String(randomInt(0, 1_000_000)).padStart(6, '0'),
  );
  await ensureSecret(p.totp(tenant.tenant, cred.credentialId), () => generateSecret());
}

async function load(
  dataDir: string,
  state: StateFile,
  multisignOverride: Record<string, number>,
  provisioned: boolean,
): Promise<SandboxState> {
  const p = paths(dataDir);
  const tenantsByClientId = new Map<string, LoadedTenant>();
  const tenantsByLoginUser = new Map<string, LoadedTenant>();
  const clientIdByTenant = new Map<string, string>();
  for (const t of state.tenants) {
    const clientSecret = await readSecret(p.clientSecret(t.tenant));
    // Created here rather than in provision() so that a dataDir made before these existed gets them.
    const loaded: LoadedTenant = {
      tenant: t.tenant,
      clientId: t.clientId,
      clientSecret,
      loginUser: await ensureSecret(p.loginUser(t.tenant), () => `${t.tenant}-sealer`),
      loginPassword: await ensureSecret(p.loginPassword(t.tenant), () =>
        randomBytes(24).toString('base64url'),
      ),
      apiToken: await ensureSecret(p.apiToken(t.tenant), () => randomBytes(32).toString('base64url')),
    };
    if (loaded.loginUser.includes(':') || tenantsByLoginUser.has(loaded.loginUser)) {
      throw new SandboxError(`sandbox login user of tenant ${t.tenant} contains ":" or is not unique`);
    }
    tenantsByClientId.set(t.clientId, loaded);
    tenantsByLoginUser.set(loaded.loginUser, loaded);
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
    const authMode = c.authMode ?? 'explicit';
    const pub: LoadedCredential['public'] = {
      tenant: c.tenant,
      clientId,
      credentialId: c.credentialId,
      keyType: c.keyType,
      scal: c.scal,
      multisign: multisignOverride[c.credentialId] ?? c.multisign,
      authMode,
      certificateSerialHex: cert.serialNumber.toUpperCase(),
      clientSecretFile: p.clientSecret(c.tenant),
      loginUserFile: p.loginUser(c.tenant),
      loginPasswordFile: p.loginPassword(c.tenant),
      apiTokenFile: p.apiToken(c.tenant),
      pinFile: p.pin(c.tenant, c.credentialId),
      totpSecretFile: p.totp(c.tenant, c.credentialId),
    };
    const certificateDer = Buffer.from(cert.rawData);
    credentials.set(c.credentialId, {
      public: pub,
      privateKey,
      ecPrivateScalar: c.keyType === 'ecdsa-p256' ? ecScalar(privateKey) : undefined,
      ...(authMode === 'implicit'
        ? { pin: randomBytes(32).toString('base64url'), totpSecret: randomBytes(32).toString('base64url') }
        : { pin: await readSecret(pub.pinFile), totpSecret: await readSecret(pub.totpSecretFile) }),
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
  return {
    rootCertPath: p.rootCert,
    rootCertPem,
    tenantsByClientId,
    tenantsByLoginUser,
    credentials,
    provisioned,
  };
}

/** Names a TLS server certificate must carry: loopback always, plus where clients are told to dial. */
export function tlsServerNames(
  host: string,
  publicUrl?: string,
): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = new Set(['localhost']);
  const ipAddresses = new Set(['127.0.0.1', '::1']);
  const add = (name: string) => {
    const bare = name.replace(/^\[|\]$/g, '');
    if (bare === '' || bare === '0.0.0.0' || bare === '::') return; // wildcards are not dialled
    (isIP(bare) ? ipAddresses : dnsNames).add(bare.toLowerCase());
  };
  add(host);
  if (publicUrl !== undefined) add(new URL(publicUrl).hostname);
  return { dnsNames: [...dnsNames], ipAddresses: [...ipAddresses] };
}

/** Re-issue a server certificate this close to its end, so a long-lived dataDir keeps serving. */
const TLS_RENEW_BEFORE_MS = 30 * 86_400_000;

/**
 * The sandbox's TLS server key and certificate, in `tls/server.pem` (key then certificate, 0600: one
 * file, replaced atomically, so concurrent starts never pair one's key with another's certificate).
 * Issued by the dataDir's root on first HTTPS start, and again when the stored one is near its end,
 * not issued by this root, or does not name every host in `names`.
 */
export async function loadOrProvisionTls(
  dataDir: string,
  names: { dnsNames: string[]; ipAddresses: string[] },
): Promise<{ certPem: string; keyPem: string; path: string }> {
  const p = paths(dataDir);
  const root: CaMaterial = { certPem: await readRequired(p.rootCert), keyPem: await readRequired(p.rootKey) };
  const stored = await readFile(p.tlsServer, 'utf8').catch(() => undefined);
  if (stored !== undefined) {
    const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/.exec(stored)?.[0];
    const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(stored)?.[0];
    if (key && cert && (await stillServes(cert, root.certPem, names))) {
      return { certPem: cert, keyPem: key, path: p.tlsServer };
    }
  }
  const issued = await issueTlsServerCertificate(root, names);
  await writePrivate(p.tlsServer, `${issued.keyPem.trim()}\n${issued.certPem.trim()}\n`);
  return { certPem: issued.certPem, keyPem: issued.keyPem, path: p.tlsServer };
}

async function stillServes(
  certPem: string,
  rootPem: string,
  names: { dnsNames: string[]; ipAddresses: string[] },
): Promise<boolean> {
  try {
    const cert = new X509Certificate(certPem);
    const root = new X509Certificate(rootPem);
    if (cert.notAfter.getTime() - Date.now() < TLS_RENEW_BEFORE_MS) return false;
    if (!(await cert.verify({ publicKey: root.publicKey, signatureOnly: true }))) return false;
    // Node's own name checks, the ones its TLS clients apply.
    const nodeCert = new NodeX509Certificate(certPem);
    return (
      names.dnsNames.every((n) => nodeCert.checkHost(n, { subject: 'never' }) !== undefined) &&
      names.ipAddresses.every((ip) => nodeCert.checkIP(ip) !== undefined)
    );
  } catch {
    return false;
  }
}

export function certValidity(cred: LoadedCredential, now = new Date()): 'valid' | 'expired' {
  return now < cred.notBefore || now > cred.notAfter ? 'expired' : 'valid';
}

/** CSC `cert/status`: also `revoked` once `sealer sandbox revoke` or `SandboxHandle.revoke` revoked the
 * current certificate. (signHash keeps signing with a revoked certificate, see README: clients' own
 * revocation checks are what tests exercise.) */
export function certStatus(cred: LoadedCredential, now = new Date()): 'valid' | 'expired' | 'revoked' {
  if (cred.isRevoked?.() === true) return 'revoked';
  return certValidity(cred, now);
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

/** Where each file of a dataDir lives (pki-material.ts and the revoke command read them too). */
export function paths(dataDir: string) {
  const secrets = path.join(dataDir, 'secrets');
  return {
    rootCert: path.join(dataDir, 'ca', 'root.pem'),
    rootKey: path.join(dataDir, 'ca', 'root-key.pem'),
    credentialCert: (id: string) => path.join(dataDir, 'credentials', id, 'cert.pem'),
    credentialKey: (id: string) => path.join(dataDir, 'credentials', id, 'key.pem'),
    clientSecret: (tenant: string) => path.join(secrets, tenant, 'client-secret'),
    loginUser: (tenant: string) => path.join(secrets, tenant, 'login-user'),
    loginPassword: (tenant: string) => path.join(secrets, tenant, 'login-password'),
    apiToken: (tenant: string) => path.join(secrets, tenant, 'api-token'),
    tlsServer: path.join(dataDir, 'tls', 'server.pem'),
    tsaCert: path.join(dataDir, 'tsa', 'cert.pem'),
    tsaKey: path.join(dataDir, 'tsa', 'key.pem'),
    pin: (tenant: string, id: string) => path.join(secrets, tenant, `${id}.pin`),
    totp: (tenant: string, id: string) => path.join(secrets, tenant, `${id}.totp`),
  };
}

/** Secret and key files: directory 0700, file 0600, value plus one trailing newline. Replaced whole,
 * and the temp file is new, so its mode holds whatever the file had before. */
async function writePrivate(file: string, value: string): Promise<void> {
  await writeFileReplacing(file, privateText(value), { ...THROWAWAY, mode: 0o600, mkdir: 0o700 });
}

function privateText(value: string): string {
  return value.endsWith('\n') ? value : `${value}\n`;
}

/**
 * The secret in `file`, created with `generate()` when missing. Created by hard-linking a finished
 * temp file, which fails if another sandbox on the same dataDir got there first: then its value wins.
 */
async function ensureSecret(file: string, generate: () => string): Promise<string> {
  const existing = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new SandboxError(`sandbox file ${file} is unreadable`, { cause: err });
  });
  if (existing !== undefined) return readSecret(file);
  try {
    await writeFileExclusive(file, privateText(generate()), { ...THROWAWAY, mode: 0o600, mkdir: 0o700 });
  } catch (err) {
    if (!(err instanceof FileExistsError)) throw err;
  }
  return readSecret(file);
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

// The sandbox's test CA: a self-signed P-256 root and the organisation e-seal certificates it issues
// for each credential (C, O, organizationIdentifier 2.5.4.97, CN; keyUsage digitalSignature +
// nonRepudiation), plus the TLS server certificate the sandbox serves HTTPS with. Keys travel as
// PKCS#8 PEM; WebCrypto is only used inside @peculiar/x509. The TSA certificate (critical EKU
// timeStamping) too; issued certificates but the TLS one name the sandbox's OCSP and CRL URLs.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, webcrypto } from 'node:crypto';
import { promisify } from 'node:util';
import { OID, type SandboxKeyType } from './oids';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const generateKeyPairAsync = promisify(generateKeyPair);
const ROOT_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const ROOT_SUBJECT = 'C=JP, O=Sealer Sandbox, CN=Sealer Sandbox Root CA';
const ROOT_YEARS = 20;
const ESEAL_YEARS = 5;
// Short enough to look like a real server certificate; a dataDir outliving it gets a new one on load.
const TLS_SERVER_DAYS = 397;
// Back-date notBefore so a verifier whose clock is slightly behind still accepts a fresh certificate.
const BACKDATE_MS = 5 * 60 * 1000;

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export interface IssuedCertificate extends CaMaterial {
  serialHex: string;
}

/** Where an issued certificate says its status can be checked (AIA and CRL distribution points). */
export interface PkiUrls {
  /** AIA id-ad-ocsp; absent: the certificate names the CRL only. */
  ocspUrl?: string;
  /** AIA id-ad-caIssuers: the root certificate (DER). */
  caIssuersUrl: string;
  crlUrl: string;
}

export const TIME_STAMPING_EKU = '1.3.6.1.5.5.7.3.8';

export interface ESealSubject {
  organization: string;
  organizationIdentifier: string;
  commonName: string;
}

export async function generateKeyPem(keyType: SandboxKeyType): Promise<string> {
  const pair =
    keyType === 'rsa-2048'
      ? await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 })
      : await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export async function createRootCa(): Promise<CaMaterial> {
  const keyPem = await generateKeyPem('ecdsa-p256');
  const privateKey = await importSigningKey(keyPem);
  const publicKeyDer = spkiDer(keyPem);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: ROOT_SUBJECT,
    issuer: ROOT_SUBJECT,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: addYears(new Date(now), ROOT_YEARS),
    signingAlgorithm: ROOT_ALG,
    publicKey: publicKeyDer,
    signingKey: privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKeyDer),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem };
}

export async function issueESealCertificate(
  root: CaMaterial,
  keyType: SandboxKeyType,
  subject: ESealSubject | x509.Name,
  options: { keyPem?: string; urls?: PkiUrls } = {},
): Promise<IssuedCertificate> {
  // A re-issue (the PKI URLs moved) keeps the key, so what it signed before still verifies.
  const keyPem = options.keyPem ?? (await generateKeyPem(keyType));
  const publicKeyDer = spkiDer(keyPem);
  const rootCert = new x509.X509Certificate(root.certPem);
  const now = Date.now();
  const serialHex = randomSerialHex();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialHex,
    subject: subject instanceof x509.Name ? subject : eSealName(subject),
    issuer: rootCert.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: addYears(new Date(now), ESEAL_YEARS),
    signingAlgorithm: ROOT_ALG,
    publicKey: publicKeyDer,
    signingKey: await importSigningKey(root.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(publicKeyDer),
      await x509.AuthorityKeyIdentifierExtension.create(rootCert),
      ...pkiExtensions(options.urls),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem, serialHex: serialHex.toUpperCase() };
}

/**
 * The sandbox TSA's certificate (RFC 3161 section 2.3: extendedKeyUsage id-kp-timeStamping only, and
 * critical), P-256, valid `days` from `nowMs` (the sandbox clock, so genTime always falls inside it).
 */
export async function issueTsaCertificate(
  root: CaMaterial,
  keyPem: string,
  days: number,
  nowMs: number,
  urls: PkiUrls,
): Promise<IssuedCertificate> {
  const publicKeyDer = spkiDer(keyPem);
  const rootCert = new x509.X509Certificate(root.certPem);
  const serialHex = randomSerialHex();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialHex,
    subject: 'C=JP, O=Sealer Sandbox, CN=Sealer Sandbox TSA',
    issuer: rootCert.subjectName,
    notBefore: new Date(nowMs - BACKDATE_MS),
    notAfter: new Date(nowMs + days * 86_400_000),
    signingAlgorithm: ROOT_ALG,
    publicKey: publicKeyDer,
    signingKey: await importSigningKey(root.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([TIME_STAMPING_EKU], true),
      await x509.SubjectKeyIdentifierExtension.create(publicKeyDer),
      await x509.AuthorityKeyIdentifierExtension.create(rootCert),
      ...pkiExtensions(urls),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem, serialHex: serialHex.toUpperCase() };
}

/** Validity length in whole days of a certificate made by this module (notBefore is back-dated). */
export function validityDays(cert: x509.X509Certificate): number {
  return Math.round((cert.notAfter.getTime() - cert.notBefore.getTime() - BACKDATE_MS) / 86_400_000);
}

/** The OCSP URL, caIssuers URL and CRL URL a certificate names (undefined where it names none). */
export function pkiUrlsOf(cert: x509.X509Certificate): {
  ocspUrl?: string;
  caIssuersUrl?: string;
  crlUrl?: string;
} {
  const aia = cert.getExtension(x509.AuthorityInfoAccessExtension);
  const dp = cert.getExtension(x509.CRLDistributionPointsExtension);
  const fullName = dp?.distributionPoints[0]?.distributionPoint?.fullName?.[0];
  return {
    ocspUrl: aia?.ocsp[0]?.value,
    caIssuersUrl: aia?.caIssuers[0]?.value,
    crlUrl: fullName?.uniformResourceIdentifier,
  };
}

function pkiExtensions(urls: PkiUrls | undefined): x509.Extension[] {
  if (urls === undefined) return [];
  return [
    new x509.AuthorityInfoAccessExtension({
      ...(urls.ocspUrl === undefined ? {} : { ocsp: [urls.ocspUrl] }),
      caIssuers: [urls.caIssuersUrl],
    }),
    new x509.CRLDistributionPointsExtension([urls.crlUrl]),
  ];
}

/** A P-256 key for the TSA. */
export async function generateTsaKeyPem(): Promise<string> {
  return generateKeyPem('ecdsa-p256');
}

/**
 * A TLS server certificate for the sandbox, issued by the root: P-256, serverAuth, SAN naming every
 * `dnsNames` and `ipAddresses` entry (clients check the name they dialled against the SAN only).
 */
export async function issueTlsServerCertificate(
  root: CaMaterial,
  names: { dnsNames: string[]; ipAddresses: string[] },
): Promise<IssuedCertificate> {
  const keyPem = await generateKeyPem('ecdsa-p256');
  const publicKeyDer = spkiDer(keyPem);
  const rootCert = new x509.X509Certificate(root.certPem);
  const now = Date.now();
  const serialHex = randomSerialHex();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialHex,
    subject: `C=JP, O=Sealer Sandbox, CN=${names.dnsNames[0] ?? names.ipAddresses[0] ?? 'sandbox'}`,
    issuer: rootCert.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + TLS_SERVER_DAYS * 86_400_000),
    signingAlgorithm: ROOT_ALG,
    publicKey: publicKeyDer,
    signingKey: await importSigningKey(root.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...names.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(publicKeyDer),
      await x509.AuthorityKeyIdentifierExtension.create(rootCert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem, serialHex: serialHex.toUpperCase() };
}

/**
 * Random positive 16-byte serial whose first byte is 0x10..0x7f: no sign bit, and no leading zero
 * nibble, so byte-wise hex (node:crypto) and minimal hex (BigInteger style) render it the same.
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = 0x10 + ((bytes[0] ?? 0) % 0x70);
  return bytes.toString('hex');
}

/** RFC 4514 string: most specific RDN first, organizationIdentifier by its OpenSSL short name. */
export function toRfc4514(name: x509.Name): string {
  const shortNames: Record<string, string> = { [OID.organizationIdentifier]: 'organizationIdentifier' };
  return name
    .toJSON()
    .slice()
    .reverse()
    .map((rdn) =>
      Object.entries(rdn)
        .flatMap(([type, values]) => values.map((v) => `${shortNames[type] ?? type}=${escapeDnValue(v)}`))
        .join('+'),
    )
    .join(',');
}

/** CSC `validFrom` / `validTo` form: GeneralizedTime `YYYYMMDDHHmmssZ`. */
export function generalizedTime(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

function eSealName(subject: ESealSubject): x509.JsonName {
  // @peculiar/x509 has no name for organizationIdentifier; the OID works as the attribute type.
  return [
    { C: ['JP'] },
    { O: [subject.organization] },
    { [OID.organizationIdentifier]: [subject.organizationIdentifier] },
    { CN: [subject.commonName] },
  ];
}

function escapeDnValue(value: string): string {
  return value
    .replace(/([,+"\\<>;=])/g, '\\$1')
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ');
}

async function importSigningKey(pkcs8Pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pkcs8Pem).export({ type: 'pkcs8', format: 'der' });
  return (await webcrypto.subtle.importKey('pkcs8', der, ROOT_ALG, false, ['sign'])) as CryptoKey;
}

function spkiDer(pkcs8Pem: string): ArrayBuffer {
  const der = createPublicKey(pkcs8Pem).export({ type: 'spki', format: 'der' });
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer;
}

function addYears(date: Date, years: number): Date {
  const d = new Date(date.getTime());
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d;
}

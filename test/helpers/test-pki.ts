// Throwaway PKI for tests: a root CA and two organisation e-seal leaves (RSA-2048, ECDSA P-256), each
// with a signDigest() that signs a precomputed SHA-256 the way a CSC provider's signHash does. The root
// is written as PEM to a temp dir for openssl/pdfsig; nssDb() makes a pdfsig trust store on demand.
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { constants, createPrivateKey, KeyObject, privateEncrypt, randomBytes, webcrypto } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { p256 } from '@noble/curves/p256';

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

/** DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1). */
const SHA256_DIGEST_INFO_PREFIX = Buffer.from('3031300d060960864801650304020105000420', 'hex');

export type EcdsaFormat = 'der' | 'raw';

export interface TestSigner {
  keyType: 'rsa' | 'ecdsa';
  certDer: Buffer;
  /** Leaf first, then the root. */
  chainDer: Buffer[];
  /** Signs a precomputed SHA-256 digest without hashing it again; ECDSA gives DER unless 'raw'. */
  signDigest(hash: Buffer, opts?: { ecdsaFormat?: EcdsaFormat }): Buffer;
}

export interface TestPki {
  dir: string;
  rootCertDer: Buffer;
  rootPemPath: string;
  rsa: TestSigner;
  ecdsa: TestSigner;
  /** A directory usable as `pdfsig -nssdir`, trusting the root (created on first call). */
  nssDb(): string;
  cleanup(): Promise<void>;
}

const ROOT_SUBJECT = 'C=JP, O=Sealer Test Trust Service, CN=Sealer Test Root CA';
const ORGANIZATION_IDENTIFIER = '2.5.4.97'; // @peculiar/x509 does not know the name

function serial(): string {
  return `01${randomBytes(8).toString('hex')}`; // leading 01: positive, fixed length
}

async function leaf(
  keyType: 'rsa' | 'ecdsa',
  root: { cert: x509.X509Certificate; keys: CryptoKeyPair },
  rootCertDer: Buffer,
): Promise<TestSigner> {
  const algorithm =
    keyType === 'rsa'
      ? {
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        }
      : { name: 'ECDSA', namedCurve: 'P-256' };
  const keys = (await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `C=JP, O=Example Tenant KK, ${ORGANIZATION_IDENTIFIER}=NTRJP-1234567890123, CN=Example Tenant KK e-seal (${keyType.toUpperCase()})`,
    issuer: root.cert.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 30 * 86400_000),
    publicKey: keys.publicKey,
    signingKey: root.keys.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.keys.publicKey),
    ],
  });
  const certDer = Buffer.from(cert.rawData);
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  const privateKey: KeyObject = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });

  if (keyType === 'rsa') {
    return {
      keyType,
      certDer,
      chainDer: [certDer, rootCertDer],
      signDigest: (hash) =>
        privateEncrypt(
          { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
          Buffer.concat([SHA256_DIGEST_INFO_PREFIX, hash]),
        ),
    };
  }
  const jwk = privateKey.export({ format: 'jwk' });
  const d = Buffer.from(jwk.d!, 'base64url');
  return {
    keyType,
    certDer,
    chainDer: [certDer, rootCertDer],
    signDigest: (hash, opts) => {
      const sig = p256.sign(hash, d, { prehash: false });
      return Buffer.from(opts?.ecdsaFormat === 'raw' ? sig.toCompactRawBytes() : sig.toDERRawBytes());
    },
  };
}

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'sealer-pki-'));
  const rootKeys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const now = Date.now();
  const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: ROOT_SUBJECT,
    notBefore: new Date(now - 86400_000),
    notAfter: new Date(now + 365 * 86400_000),
    keys: rootKeys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const rootCertDer = Buffer.from(rootCert.rawData);
  const rootPemPath = join(dir, 'root.pem');
  await writeFile(rootPemPath, rootCert.toString('pem'));
  const root = { cert: rootCert, keys: rootKeys };
  const [rsa, ecdsa] = await Promise.all([leaf('rsa', root, rootCertDer), leaf('ecdsa', root, rootCertDer)]);

  let nssDir: string | undefined;
  return {
    dir,
    rootCertDer,
    rootPemPath,
    rsa,
    ecdsa,
    nssDb() {
      if (!nssDir) {
        const created = join(dir, 'nssdb');
        mkdirSync(created);
        execFileSync('certutil', ['-N', '-d', `sql:${created}`, '--empty-password']);
        execFileSync('certutil', [
          '-A',
          '-d',
          `sql:${created}`,
          '-n',
          'sealer-test-root',
          '-t',
          'CT,C,C',
          '-i',
          rootPemPath,
        ]);
        nssDir = created;
      }
      return nssDir;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

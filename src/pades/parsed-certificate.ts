// One parse per distinct certificate for everything in pades that reads certificates again and again
// (a night seals thousands of invoices with one signer and one TSA certificate): the X509 object, its
// key and its issuer/serial bytes (how a SignerInfo names its signer).
import { KeyObject, X509Certificate } from 'node:crypto';
import { bytesOf, readChildren, readTlv, TAG } from './der';

export interface ParsedCert {
  x509: X509Certificate;
  key: KeyObject;
  issuerAndSerial: Buffer; // issuer Name DER || serial INTEGER DER
}

const CERT_CACHE_LIMIT = 256;
const certCache = new Map<string, ParsedCert>();
/** The certificate asked for last, by its bytes: a night asks for one signer's again and again, and
 * comparing bytes spares making the cache's string key each time. */
let last: { der: Buffer; entry: ParsedCert } | undefined;

/** Parsed once per distinct certificate: the X509 object, its key and its issuer/serial bytes. */
export function parsedCert(certDer: Buffer): ParsedCert {
  if (last && last.der.equals(certDer)) return last.entry;
  const entry = parsedCertByKey(certDer);
  last = { der: Buffer.from(certDer), entry };
  return entry;
}

function parsedCertByKey(certDer: Buffer): ParsedCert {
  const cacheKey = certDer.toString('latin1');
  const hit = certCache.get(cacheKey);
  if (hit) return hit;
  const x509 = new X509Certificate(certDer);
  const cert = readTlv(certDer, 0);
  const tbs = readChildren(certDer, readChildren(certDer, cert)[0]!);
  const offset = tbs[0]?.tag === TAG.CONTEXT_0 ? 1 : 0; // [0] EXPLICIT version is optional
  const serial = tbs[offset]!;
  const issuer = tbs[offset + 2]!;
  const entry = {
    x509,
    key: x509.publicKey,
    issuerAndSerial: Buffer.concat([bytesOf(certDer, issuer), bytesOf(certDer, serial)]),
  };
  if (certCache.size >= CERT_CACHE_LIMIT) certCache.delete(certCache.keys().next().value!);
  certCache.set(cacheKey, entry);
  return entry;
}

/** The parsed certificate (subject, serial, validity, key) from the shared cache. */
export function cachedCertificate(certDer: Buffer): X509Certificate {
  return parsedCert(certDer).x509;
}

// Credential facts: what the rest of the worker needs to know about one CSC credential (certificate
// chain, key algorithm, the signAlgo to send, multisign, SCAL, which factors authorise it), read once
// from a credentials/info answer: CSC v2's (`auth` mode, expression and objects) or v1.0.4.0's (`authMode`,
// PIN/OTP groups with `presence`), or a mix of both.
import { X509Certificate } from 'node:crypto';
import { CscError } from './csc-error';

export const OID = {
  sha256: '2.16.840.1.101.3.4.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  rsassaPss: '1.2.840.113549.1.1.10',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
} as const;

export interface CredentialFacts {
  credentialId: string;
  /** DER, leaf first. */
  certificates: Buffer[];
  keyAlgorithm: 'rsa' | 'ecdsa';
  /** What to send as signAlgo in signatures/signHash (hashes are always SHA-256). */
  signAlgoOid: string;
  /** Most signatures one authorisation may cover (CSC `multisign`, at least 1). */
  multisign: number;
  scal: 1 | 2;
  /** CSC auth mode: `explicit` (factors sent in authData), `oauth2code`, or `implicit` (v1). */
  authMode: string;
  factors: Array<'PIN' | 'OTP'>;
  /** How the OTP is produced: from a TOTP secret we hold, or by something else (SMS, device). */
  otpGenerator?: 'totp' | 'other';
  /** Leaf certificate serial number as CSC's cert/serialNumber writes it: upper-case hex, no leading zeros. */
  certificateSerialHex: string;
  /** The ids credentials/authorize expects in authData for each factor (auth/objects[].id). */
  authDataIds?: { PIN?: string; OTP?: string };
  /** CSC auth/expression, e.g. "PIN AND OTP"; absent means all factors are needed. */
  authExpression?: string;
  /** Named curve of an ECDSA key, e.g. `prime256v1`. */
  ecCurve?: string;
}

const ENDPOINT = 'credentials/info';

/** Build the facts from a credentials/info answer; refuses credentials that cannot seal. */
export function parseCredentialInfo(credentialId: string, body: Record<string, unknown>): CredentialFacts {
  const fail = (detail: string) =>
    new CscError({ endpoint: ENDPOINT, retryable: false, detail: `credential ${credentialId}: ${detail}` });

  const key = record(body.key);
  if (key.status !== undefined && key.status !== 'enabled') throw fail(`key status is ${String(key.status)}`);
  const cert = record(body.cert);
  if (cert.status !== undefined && cert.status !== 'valid') {
    throw fail(`certificate status is ${String(cert.status)}`);
  }

  const certificates = (Array.isArray(cert.certificates) ? cert.certificates : []).map((c, i) => {
    if (typeof c !== 'string') throw fail(`cert/certificates[${i}] is not a string`);
    return Buffer.from(c, 'base64');
  });
  if (certificates.length === 0) throw fail('answer has no certificates (asked for the chain)');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certificates[0]!);
  } catch (err) {
    throw new CscError({
      endpoint: ENDPOINT,
      retryable: false,
      detail: `credential ${credentialId}: cert/certificates[0] is not an X.509 certificate`,
      cause: err,
    });
  }

  const keyType = leaf.publicKey.asymmetricKeyType;
  if (keyType !== 'rsa' && keyType !== 'ec') throw fail(`key type ${String(keyType)} is not supported`);
  const keyAlgorithm = keyType === 'rsa' ? 'rsa' : 'ecdsa';
  const algos = Array.isArray(key.algo) ? key.algo.filter((a): a is string => typeof a === 'string') : [];
  const signAlgoOid = chooseSignAlgo(keyAlgorithm, algos);
  if (!signAlgoOid)
    throw fail(`none of key/algo [${algos.join(', ')}] signs SHA-256 hashes with a ${keyType} key`);

  const auth = record(body.auth);
  const authMode = str(auth.mode) ?? str(body.authMode) ?? 'explicit';
  const { factors, ids, otpGenerator } = readFactors(auth, body);
  const scalText = String(body.SCAL ?? body.scal ?? '1');
  if (scalText !== '1' && scalText !== '2') throw fail(`SCAL ${scalText} is neither 1 nor 2`);

  return {
    credentialId,
    certificates,
    keyAlgorithm,
    signAlgoOid,
    multisign: readMultisign(body.multisign),
    scal: scalText === '2' ? 2 : 1,
    authMode,
    factors,
    ...(factors.includes('OTP') ? { otpGenerator } : {}),
    certificateSerialHex: leaf.serialNumber.toUpperCase().replace(/^0+(?=.)/, ''),
    authDataIds: ids,
    ...(str(auth.expression) ? { authExpression: str(auth.expression) } : {}),
    ...(keyAlgorithm === 'ecdsa' && leaf.publicKey.asymmetricKeyDetails?.namedCurve
      ? { ecCurve: leaf.publicKey.asymmetricKeyDetails.namedCurve }
      : {}),
  };
}

/** Prefer an algorithm that names SHA-256 itself; the bare key OIDs work with hashAlgorithmOID. */
function chooseSignAlgo(key: 'rsa' | 'ecdsa', algos: string[]): string | undefined {
  const preferred =
    key === 'rsa' ? [OID.sha256WithRSAEncryption, OID.rsaEncryption] : [OID.ecdsaWithSHA256, OID.ecPublicKey];
  if (algos.length === 0) return preferred[0];
  return preferred.find((oid) => algos.includes(oid));
}

function readMultisign(v: unknown): number {
  const n = typeof v === 'string' ? Number(v) : v;
  // ETSI-flavoured providers send a boolean; it gives no count, so assume the safe one.
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 ? n : 1;
}

function readFactors(
  auth: Record<string, unknown>,
  body: Record<string, unknown>,
): { factors: Array<'PIN' | 'OTP'>; ids: { PIN?: string; OTP?: string }; otpGenerator: 'totp' | 'other' } {
  const factors: Array<'PIN' | 'OTP'> = [];
  const ids: { PIN?: string; OTP?: string } = {};
  let otpGenerator: 'totp' | 'other' = 'totp';
  const add = (f: 'PIN' | 'OTP', id: string) => {
    if (!factors.includes(f)) factors.push(f);
    ids[f] ??= id;
  };
  const objects = Array.isArray(auth.objects) ? auth.objects.map(record) : [];
  for (const o of objects) {
    const id = str(o.id) ?? '';
    const label = `${id} ${str(o.type) ?? ''}`;
    if (/otp/i.test(label)) {
      add('OTP', id || 'OTP');
      otpGenerator = otpKind(str(o.generator), str(o.otpType) ?? str(o.type));
    } else if (/pin|password/i.test(label)) {
      add('PIN', id || 'PIN');
    }
  }
  // CSC v1.0.4.0 shape (section 11.5, with authInfo): PIN and OTP groups whose `presence` is "true",
  // "false" or "optional"; only "true" makes a factor required. A v1 client sends them as top-level
  // `PIN` and `OTP` strings (section 11.6), so the ids kept here (OTP/ID, the OTP device) go unused there.
  const pin = record(body.PIN);
  if (isPresent(pin.presence)) add('PIN', 'PIN');
  const otp = record(body.OTP);
  if (isPresent(otp.presence)) {
    add('OTP', str(otp.ID) ?? 'OTP');
    otpGenerator = otpKind(undefined, str(otp.type));
  }
  return { factors, ids, otpGenerator };
}

/** An "online" OTP is sent to a person by the provider; only an offline (TOTP) one can be computed here. */
function otpKind(generator: string | undefined, type: string | undefined): 'totp' | 'other' {
  if (generator !== undefined) return /totp/i.test(generator) ? 'totp' : 'other';
  return type !== undefined && /online/i.test(type) ? 'other' : 'totp';
}

function isPresent(v: unknown): boolean {
  return v === true || v === 'true';
}

function record(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

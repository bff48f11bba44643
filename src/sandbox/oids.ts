// Object identifiers the sandbox speaks in CSC requests and responses, and which signature algorithms
// each key type accepts (CSC: `signAlgo` must be one of the credential's `key/algo`).

export const OID = {
  sha256: '2.16.840.1.101.3.4.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  prime256v1: '1.2.840.10045.3.1.7',
  organizationIdentifier: '2.5.4.97',
} as const;

export type SandboxKeyType = 'rsa-2048' | 'ecdsa-p256';

/** Signature algorithms `signHash` accepts per key type, in the order `key/algo` lists them. */
export const SIGN_ALGOS: Record<SandboxKeyType, readonly string[]> = {
  'rsa-2048': [OID.rsaEncryption, OID.sha256WithRSAEncryption],
  'ecdsa-p256': [OID.ecdsaWithSha256],
};

/** Algorithms whose OID already names the hash, so `hashAlgorithmOID` may be omitted. */
export const HASH_IMPLIED_BY_SIGN_ALGO: Record<string, string> = {
  [OID.sha256WithRSAEncryption]: OID.sha256,
  [OID.ecdsaWithSha256]: OID.sha256,
};

/** DER prefix of DigestInfo { sha256, NULL } before the 32-byte digest (RFC 8017 section 9.2 note 1). */
export const SHA256_DIGEST_INFO_PREFIX = Buffer.from('3031300d060960864801650304020105000420', 'hex');

export const SHA256_LENGTH = 32;

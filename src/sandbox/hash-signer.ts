// Raw signatures over precomputed SHA-256 digests, as an HSM behind `signatures/signHash` makes them:
// RSA PKCS#1 v1.5 over DigestInfo(sha256, hash); ECDSA P-256 without re-hashing (node:crypto always
// hashes first, so @noble/curves signs the digest), returned as DER or raw r||s per the sandbox option.
import { p256 } from '@noble/curves/p256';
import { constants, privateEncrypt, type KeyObject } from 'node:crypto';
import { SHA256_DIGEST_INFO_PREFIX } from './oids';

export type EcdsaSignatureFormat = 'der' | 'raw';

export function signDigestRsa(privateKey: KeyObject, digest: Buffer): Buffer {
  return privateEncrypt(
    { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
    Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]),
  );
}

export function signDigestEcdsa(scalar: Uint8Array, digest: Buffer, format: EcdsaSignatureFormat): Buffer {
  const sig = p256.sign(new Uint8Array(digest), scalar, { prehash: false, lowS: true });
  return Buffer.from(format === 'raw' ? sig.toCompactRawBytes() : sig.toDERRawBytes());
}

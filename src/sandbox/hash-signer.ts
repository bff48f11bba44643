// Raw signatures over precomputed SHA-256 digests, as an HSM behind `signatures/signHash` makes them:
// RSA PKCS#1 v1.5 over DigestInfo(sha256, hash); ECDSA P-256 without re-hashing, returned as DER or raw
// r||s per the sandbox option.
//
// ECDSA: node:crypto cannot sign a digest (crypto.sign always hashes first), and @noble/curves' sign,
// in pure JavaScript BigInt arithmetic, costs ~0.8-1.5 ms here even with its base-point table (which
// 1.9 precomputes at load): most of it is field arithmetic in k*G and two modular inversions. So the
// point multiplication k*G is left to OpenSSL (an ECDH public key of the random nonce k is exactly k*G),
// and the one inversion that remains, k^-1 mod n, is shared by every hash of a call (Montgomery's batch
// inversion). The scalar formulas are ECDSA's (SEC 1 v2 section 4.1.3) with a random nonce from the
// CSPRNG, low-s normalised; the result verifies under any ECDSA verifier (tests check with @noble/curves
// and OpenSSL).
import { invert, mod } from '@noble/curves/abstract/modular';
import { p256 } from '@noble/curves/p256';
import { constants, createECDH, privateEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { SHA256_DIGEST_INFO_PREFIX } from './oids';

export type EcdsaSignatureFormat = 'der' | 'raw';

const N = p256.CURVE.n;
const HALF_N = N >> 1n;
// One ECDH object for the process: signing is synchronous, so no two calls share it at once.
const nonceToPoint = createECDH('prime256v1');

export function signDigestRsa(privateKey: KeyObject, digest: Buffer): Buffer {
  return privateEncrypt(
    { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
    Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]),
  );
}

function toBigInt(bytes: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
}

/** A nonce k in [1, n-1] and r = x(k*G) mod n (never 0), k*G computed by OpenSSL. */
function nonce(): { k: bigint; r: bigint } {
  for (;;) {
    const kBytes = randomBytes(32);
    const k = toBigInt(kBytes);
    if (k === 0n || k >= N) continue;
    nonceToPoint.setPrivateKey(kBytes);
    // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
    const r = mod(toBigInt(nonceToPoint.getPublicKey().subarray(1, 33)), N);
    if (r !== 0n) return { k, r };
  }
}

/**
 * ECDSA P-256 signatures of SHA-256 digests (not hashed again), one per digest in order. The digests'
 * 256 bits are the curve order's length, so e is the digest itself (no truncation).
 */
export function signDigestsEcdsa(
  scalar: Uint8Array,
  digests: readonly Buffer[],
  format: EcdsaSignatureFormat,
): Buffer[] {
  if (digests.length === 0) return [];
  const d = toBigInt(scalar);
  const nonces = digests.map(() => nonce());
  // Batch inversion: prefix[i] = k_0 * ... * k_i; one inversion of the whole product, then each k_i^-1
  // peeled off from the end with two multiplications.
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const { k } of nonces) prefix.push((acc = mod(acc * k, N)));
  let inv = invert(acc, N);
  const kInv: bigint[] = new Array<bigint>(nonces.length);
  for (let i = nonces.length - 1; i >= 0; i--) {
    kInv[i] = i === 0 ? inv : mod(inv * prefix[i - 1]!, N);
    inv = mod(inv * nonces[i]!.k, N);
  }
  return digests.map((digest, i) => {
    const { r } = nonces[i]!;
    let s = mod(kInv[i]! * (toBigInt(digest) + r * d), N);
    if (s === 0n) return signDigestsEcdsa(scalar, [digest], format)[0]!; // probability ~2^-256
    if (s > HALF_N) s = N - s;
    const sig = new p256.Signature(r, s);
    return Buffer.from(format === 'raw' ? sig.toCompactRawBytes() : sig.toDERRawBytes());
  });
}

export function signDigestEcdsa(scalar: Uint8Array, digest: Buffer, format: EcdsaSignatureFormat): Buffer {
  return signDigestsEcdsa(scalar, [digest], format)[0]!;
}

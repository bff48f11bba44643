// The sandbox's raw signatures over precomputed SHA-256 digests, checked by OpenSSL (node:crypto.verify
// over the message whose digest was signed): ECDSA P-256 with OpenSSL's k*G and one shared inversion per
// call, in DER and raw r||s, low-s, a fresh nonce per signature; RSA PKCS#1 v1.5 as crypto.sign makes it.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { test } from 'node:test';
import { p256 } from '@noble/curves/p256';
import { signDigestEcdsa, signDigestRsa, signDigestsEcdsa } from '../../src/sandbox/hash-signer';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const scalar = new Uint8Array(Buffer.from(ec.privateKey.export({ format: 'jwk' }).d!, 'base64url'));
const sha256 = (m: Buffer) => createHash('sha256').update(m).digest();

test('ECDSA signatures of a whole call verify in OpenSSL, each over its own digest, in order', () => {
  for (const size of [1, 2, 3, 100]) {
    const messages = Array.from({ length: size }, () => randomBytes(40));
    const der = signDigestsEcdsa(scalar, messages.map(sha256), 'der');
    assert.equal(der.length, size);
    der.forEach((sig, i) => {
      assert.ok(verify('sha256', messages[i]!, ec.publicKey, sig), `DER signature ${i} of ${size}`);
      // ... and not over a neighbour's digest.
      if (size > 1) assert.ok(!verify('sha256', messages[(i + 1) % size]!, ec.publicKey, sig));
    });
    const raw = signDigestsEcdsa(scalar, messages.map(sha256), 'raw');
    raw.forEach((sig, i) => {
      assert.equal(sig.length, 64);
      assert.ok(
        verify('sha256', messages[i]!, { key: ec.publicKey, dsaEncoding: 'ieee-p1363' }, sig),
        `raw signature ${i} of ${size}`,
      );
    });
  }
  assert.deepEqual(signDigestsEcdsa(scalar, [], 'der'), []);
});

test('ECDSA signatures are low-s and use a fresh nonce each time', () => {
  const digest = sha256(Buffer.from('one invoice'));
  const sigs = Array.from({ length: 50 }, () => signDigestEcdsa(scalar, digest, 'raw'));
  const rs = new Set(sigs.map((s) => s.subarray(0, 32).toString('hex')));
  assert.equal(rs.size, sigs.length, 'every r differs');
  for (const s of sigs) {
    const parsed = p256.Signature.fromCompact(new Uint8Array(s));
    assert.ok(!parsed.hasHighS(), 'low s');
  }
});

test('RSA signatures of a digest equal what OpenSSL signs over the message', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const message = randomBytes(64);
  // PKCS#1 v1.5 is deterministic: the same bytes as crypto.sign's.
  assert.deepEqual(signDigestRsa(rsa.privateKey, sha256(message)), sign('sha256', message, rsa.privateKey));
});

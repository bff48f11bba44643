// The parsed-certificate cache answers by the certificate's bytes, never by the caller's buffer: a
// night asks for one signer's key thousands of times, and a cache hit must never hand one credential's
// key out for another credential's certificate.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { CmsTemplate, digestToSign, verifyCms } from '../../src/pades';
import { parsedCert } from '../../src/pades/parsed-certificate';
import { createTestPki, type TestPki, type TestSigner } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: TestPki;
before(async () => {
  pki = await createTestPki();
});
after(() => pki.cleanup());

function spki(der: Buffer): string {
  return new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
}

function keyOf(der: Buffer): string {
  return parsedCert(der).key.export({ type: 'spki', format: 'der' }).toString('hex');
}

test('each certificate gets its own key, asked for in turn', { timeout: TEST_TIMEOUT_MS }, () => {
  const [a, b] = [pki.rsa.certDer, pki.ecdsa.certDer];
  for (const der of [a, b, a, a, b, b, a]) assert.equal(keyOf(der), spki(der));
});

test(
  'a buffer the caller changes after asking is not taken for the certificate it held',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const a = pki.rsa.certDer;
    // Another certificate of the very same length: a's with one byte of its RSA modulus changed (a
    // certificate is parsed, not verified, so it reads as another key).
    const key = new X509Certificate(a).publicKey.export({ type: 'spki', format: 'der' });
    const at = a.indexOf(key);
    assert.ok(at > 0, "the certificate holds its key's SubjectPublicKeyInfo");
    const b = Buffer.from(a);
    b[at + key.length - 10]! ^= 0xff;
    assert.notEqual(spki(b), spki(a));
    const held = Buffer.from(a);
    // Another certificate first, so that `held` is the one asked for last.
    assert.equal(keyOf(pki.ecdsa.certDer), spki(pki.ecdsa.certDer));
    assert.equal(keyOf(held), spki(a));
    // The same memory now holds the other certificate (a pooled buffer reused by the next CMS).
    b.copy(held);
    assert.equal(keyOf(held), spki(b));
    assert.equal(keyOf(a), spki(a));
  },
);

function seal(signer: TestSigner, content: Buffer): Buffer {
  const template = CmsTemplate.fromCertificates(signer.chainDer);
  const attrs = template.signedAttributes(createHash('sha256').update(content).digest());
  return template.assemble(attrs, signer.signDigest(digestToSign(attrs)));
}

test(
  "verifying seals of two credentials in turn checks each with its own certificate's key",
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const content = randomBytes(500);
    for (const signer of [pki.rsa, pki.ecdsa, pki.rsa, pki.ecdsa]) {
      const check = verifyCms(seal(signer, content), content, { expectedCertificateDer: signer.certDer });
      assert.deepEqual(check.problems, [], signer.keyType);
      // And never accepted as the other credential's.
      const other = signer === pki.rsa ? pki.ecdsa : pki.rsa;
      assert.equal(
        verifyCms(seal(signer, content), content, { expectedCertificateDer: other.certDer }).valid,
        false,
      );
    }
  },
);

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { CmsTemplate, digestToSign, verifyCms } from '../../src/pades';
import { createTestPki, TestPki, TestSigner } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: TestPki;
before(async () => {
  pki = await createTestPki();
});
after(() => pki.cleanup());

function seal(signer: TestSigner, content: Buffer, signedBy: TestSigner = signer) {
  const template = CmsTemplate.fromCertificates(signer.chainDer);
  const attrs = template.signedAttributes(createHash('sha256').update(content).digest());
  return template.assemble(attrs, signedBy.signDigest(digestToSign(attrs)));
}

test(
  'verifyCms accepts a good seal and names its signer certificate (RSA and ECDSA)',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const content = randomBytes(20_000);
    for (const signer of [pki.rsa, pki.ecdsa]) {
      const result = verifyCms(seal(signer, content), content, { expectedCertificateDer: signer.certDer });
      assert.deepEqual(result.problems, [], signer.keyType);
      assert.equal(result.valid, true);
      assert.ok(result.signerCertificateDer?.equals(signer.certDer));
    }
  },
);

test('verifyCms reports altered content as a message-digest mismatch', { timeout: TEST_TIMEOUT_MS }, () => {
  const content = randomBytes(1000);
  const cms = seal(pki.ecdsa, content);
  content[500]! ^= 1;
  const result = verifyCms(cms, content);
  assert.equal(result.valid, false);
  assert.match(result.problems.join(), /message digest does not match/);
});

test('verifyCms reports a signature made with another key', { timeout: TEST_TIMEOUT_MS }, () => {
  const content = randomBytes(1000);
  // The right key over the wrong hash: what a provider mixing up batch positions would return.
  const template = CmsTemplate.fromCertificates(pki.rsa.chainDer);
  const attrs = template.signedAttributes(createHash('sha256').update(content).digest());
  const cms = template.assemble(attrs, pki.rsa.signDigest(randomBytes(32)));
  const result = verifyCms(cms, content);
  assert.equal(result.valid, false);
  assert.match(result.problems.join(), /signature over the signed attributes does not verify/);
});

test(
  'verifyCms reports a signer that is not the expected credential certificate',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const content = randomBytes(100);
    const result = verifyCms(seal(pki.ecdsa, content), content, { expectedCertificateDer: pki.rsa.certDer });
    assert.equal(result.valid, false);
    assert.match(result.problems.join(), /not the expected credential certificate/);
  },
);

// OpenSSL 3.0.19 and pdfsig 22.12 (NSS) on this machine accept such a CMS, since they hash the attributes
// as received; validators that re-encode them as DER (BouncyCastle-based, e.g. EU DSS) reject it.
test('verifyCms flags signed attributes that are not in DER SET order', { timeout: TEST_TIMEOUT_MS }, () => {
  const content = randomBytes(100);
  const template = CmsTemplate.fromCertificates(pki.ecdsa.chainDer);
  const sorted = template.signedAttributes(createHash('sha256').update(content).digest());
  // Reverse the three attributes and sign those bytes as they are.
  const children: Buffer[] = [];
  const headerLength = sorted[1]! < 0x80 ? 2 : 2 + (sorted[1]! & 0x7f);
  for (let at = headerLength; at < sorted.length;) {
    const len = sorted[at + 1]! < 0x80 ? sorted[at + 1]! + 2 : sorted[at + 2]! + 3; // short or 0x81 form
    children.push(sorted.subarray(at, at + len));
    at += len;
  }
  assert.equal(children.length, 3);
  const unsorted = Buffer.concat([sorted.subarray(0, headerLength), ...children.reverse()]);
  const cms = template.assemble(unsorted, pki.ecdsa.signDigest(digestToSign(unsorted)));
  const result = verifyCms(cms, content);
  assert.equal(result.valid, false);
  assert.match(result.problems.join(), /not in DER SET order/);
});

test('verifyCms never throws on garbage; it reports why', { timeout: TEST_TIMEOUT_MS }, () => {
  for (const junk of [Buffer.alloc(0), randomBytes(50), Buffer.from([0x30, 0x80, 0, 0])]) {
    const result = verifyCms(junk, Buffer.alloc(1));
    assert.equal(result.valid, false);
    assert.match(result.problems.join(), /CMS could not be checked/);
  }
});

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { CmsTemplate, digestToSign, PadesError } from '../../src/pades';
import { createTestPki, TestPki } from '../helpers/test-pki';
import { createHash } from 'node:crypto';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: TestPki;
before(async () => {
  pki = await createTestPki();
});
after(() => pki.cleanup());

function signedCms(signer: TestPki['rsa'], content: Buffer, ecdsaFormat: 'der' | 'raw' = 'der') {
  const template = CmsTemplate.fromCertificates(signer.chainDer);
  const attrs = template.signedAttributes(createHash('sha256').update(content).digest());
  return template.assemble(attrs, signer.signDigest(digestToSign(attrs), { ecdsaFormat }));
}

/**
 * openssl flags: -binary (content is bytes, not MIME text), -inform DER, -content (detached),
 * -CAfile (our root), -purpose any (an e-seal certificate is not an S/MIME e-mail certificate: real
 * ones may carry EKUs that openssl's default "smimesign" purpose rejects; ours has none, so it would
 * pass without the flag too).
 */
function opensslVerify(cms: Buffer, content: Buffer, name: string): string {
  const cmsPath = join(pki.dir, `${name}.der`);
  const contentPath = join(pki.dir, `${name}.bin`);
  writeFileSync(cmsPath, cms);
  writeFileSync(contentPath, content);
  return (
    execFileSync(
      'openssl',
      [
        'cms',
        '-verify',
        '-binary',
        '-inform',
        'DER',
        '-in',
        cmsPath,
        '-content',
        contentPath,
        '-CAfile',
        pki.rootPemPath,
        '-purpose',
        'any',
        '-out',
        '/dev/null',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ).toString() + 'ok'
  );
}

test(
  'assemble builds a detached SignedData that openssl cms -verify accepts (RSA and ECDSA)',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const content = randomBytes(5000);
    for (const signer of [pki.rsa, pki.ecdsa]) {
      const cms = signedCms(signer, content);
      assert.doesNotThrow(() => opensslVerify(cms, content, `ok-${signer.keyType}`), signer.keyType);
      assert.throws(() =>
        opensslVerify(cms, Buffer.concat([content, Buffer.from('x')]), `bad-${signer.keyType}`),
      );
    }
  },
);

test(
  'assemble: version, sha256, detached, certificates = chain, algorithm per key type',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    for (const signer of [pki.rsa, pki.ecdsa]) {
      const cms = signedCms(signer, randomBytes(100));
      const info = pkijs.ContentInfo.fromBER(new Uint8Array(cms));
      assert.equal(info.contentType, '1.2.840.113549.1.7.2');
      const sd = new pkijs.SignedData({ schema: info.content });
      assert.equal(sd.version, 1);
      assert.deepEqual(
        sd.digestAlgorithms.map((a) => a.algorithmId),
        ['2.16.840.1.101.3.4.2.1'],
      );
      assert.equal(sd.encapContentInfo.eContentType, '1.2.840.113549.1.7.1');
      assert.equal(sd.encapContentInfo.eContent, undefined, 'detached');
      const certs = (sd.certificates ?? []).map((c) =>
        Buffer.from((c as pkijs.Certificate).toSchema().toBER()),
      );
      assert.deepEqual(
        certs.map((c) => c.toString('hex')).sort(),
        signer.chainDer.map((c) => c.toString('hex')).sort(),
      );
      const si = sd.signerInfos[0]!;
      assert.equal(sd.signerInfos.length, 1);
      assert.equal(si.version, 1);
      assert.equal(si.digestAlgorithm.algorithmId, '2.16.840.1.101.3.4.2.1');
      assert.equal(
        si.signatureAlgorithm.algorithmId,
        signer.keyType === 'rsa' ? '1.2.840.113549.1.1.1' : '1.2.840.10045.4.3.2',
      );
      const sid = si.sid as pkijs.IssuerAndSerialNumber;
      const leaf = pkijs.Certificate.fromBER(new Uint8Array(signer.certDer));
      assert.ok(sid.serialNumber.isEqual(leaf.serialNumber) && sid.issuer.isEqual(leaf.issuer));
    }
  },
);

test(
  'assemble normalises a raw r||s ECDSA signature to DER, and openssl verifies it',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const content = randomBytes(3000);
    const cms = signedCms(pki.ecdsa, content, 'raw');
    const sd = new pkijs.SignedData({ schema: pkijs.ContentInfo.fromBER(new Uint8Array(cms)).content });
    const sig = Buffer.from(sd.signerInfos[0]!.signature.valueBlock.valueHexView);
    assert.equal(sig[0], 0x30, 'stored as DER ECDSA-Sig-Value');
    assert.doesNotThrow(() => opensslVerify(cms, content, 'raw-ecdsa'));
  },
);

test('assemble refuses signatures that cannot be right for the key', { timeout: TEST_TIMEOUT_MS }, () => {
  const rsa = CmsTemplate.fromCertificates(pki.rsa.chainDer);
  const attrs = rsa.signedAttributes(randomBytes(32));
  assert.throws(
    () => rsa.assemble(attrs, randomBytes(255)),
    (e: unknown) => e instanceof PadesError && /256/.test(e.message),
  );
  const ec = CmsTemplate.fromCertificates(pki.ecdsa.chainDer);
  assert.throws(() => ec.assemble(ec.signedAttributes(randomBytes(32)), randomBytes(63)), PadesError);
  assert.throws(() => ec.assemble(Buffer.from([0x30, 0x00]), randomBytes(64)), /exactly one DER SET/);
});

test(
  'maxCmsLength bounds every CMS the template assembles, within a few bytes',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const pki = await createTestPki();
    try {
      for (const signer of [pki.rsa, pki.ecdsa]) {
        const template = CmsTemplate.fromCertificates(signer.chainDer);
        for (let i = 0; i < 20; i++) {
          const attrs = template.signedAttributes(randomBytes(32));
          const cms = template.assemble(attrs, await signer.signDigest(digestToSign(attrs)));
          assert.ok(cms.length <= template.maxCmsLength, `${cms.length} <= ${template.maxCmsLength}`);
          assert.ok(template.maxCmsLength - cms.length <= 4);
        }
      }
    } finally {
      await pki.cleanup();
    }
  },
);

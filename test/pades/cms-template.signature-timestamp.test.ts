import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as pkijs from 'pkijs';
import {
  buildTimeStampReq,
  checkTimestampToken,
  CmsTemplate,
  digestToSign,
  inspectCms,
  newNonce,
  readTimeStampResp,
} from '../../src/pades';
import { createTestPki, TestPki, TestSigner } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { createOpensslTsa, OpensslTsa } from './tsa-fixture';

let pki: TestPki;
let tsa: OpensslTsa;
before(async () => {
  [pki, tsa] = await Promise.all([createTestPki(), createOpensslTsa()]);
});
after(() => Promise.all([pki.cleanup(), tsa.cleanup()]));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

async function tokenOver(digest: Buffer): Promise<Buffer> {
  const nonce = newNonce();
  const { tokenDer } = readTimeStampResp(
    await tsa.reply(buildTimeStampReq({ digest, nonce, certReq: true })),
  );
  checkTimestampToken(tokenDer, { digest, nonce, trustedRootsDer: [tsa.rootDer] });
  return tokenDer;
}

/** A B-T CMS the way the finish step will build it: sign, stamp the signature value, assemble. */
async function sealBT(signer: TestSigner, content: Buffer, ecdsaFormat: 'der' | 'raw' = 'der') {
  const template = CmsTemplate.fromCertificates(signer.chainDer);
  const attrs = template.signedAttributes(sha256(content));
  const signature = signer.signDigest(digestToSign(attrs), { ecdsaFormat });
  const tokenDer = await tokenOver(sha256(template.signatureValue(signature)));
  const cms = template.assemble(attrs, signature, { signatureTimeStampToken: tokenDer });
  return { template, attrs, signature, tokenDer, cms };
}

async function write(name: string, data: Buffer): Promise<string> {
  const file = path.join(tsa.dir, name);
  await fs.writeFile(file, data);
  return file;
}

test(
  'a B-T CMS verifies in openssl cms, and its token, read back by pkijs, verifies in openssl ts over the signature',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const [signer, format] of [
      [pki.rsa, 'der'],
      [pki.ecdsa, 'der'],
      [pki.ecdsa, 'raw'],
    ] as const) {
      const label = `${signer.keyType}-${format}`;
      const content = randomBytes(4000);
      const { template, tokenDer, cms } = await sealBT(signer, content, format);
      const cmsFile = await write(`bt-${label}.der`, cms);
      const contentFile = await write(`bt-${label}.bin`, content);
      await tsa.openssl([
        'cms', '-verify', '-binary', '-inform', 'DER', '-in', cmsFile, '-content', contentFile,
        '-CAfile', pki.rootPemPath, '-purpose', 'any', '-out', '/dev/null',
      ]); // prettier-ignore
      const printed = await tsa.openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', cmsFile]);
      assert.match(printed, /unsignedAttrs:\s+object: id-smime-aa-timeStampToken/, label);

      // Independent of CmsTemplate: pkijs finds the signature value and the token in the CMS.
      const sd = new pkijs.SignedData({ schema: pkijs.ContentInfo.fromBER(new Uint8Array(cms)).content });
      const si = sd.signerInfos[0]!;
      const sigValue = Buffer.from(si.signature.valueBlock.valueHexView);
      const attr = si.unsignedAttrs!.attributes.find((a) => a.type === '1.2.840.113549.1.9.16.2.14')!;
      const embedded = Buffer.from(attr.values[0]!.toBER(false));
      assert.ok(embedded.equals(tokenDer), `${label}: the token is embedded byte for byte`);
      const verified = await tsa.openssl([
        'ts', '-verify', '-token_in', '-in', await write(`bt-${label}-token.der`, embedded),
        '-digest', sha256(sigValue).toString('hex'), '-CAfile', tsa.rootPemPath,
      ]); // prettier-ignore
      assert.match(verified, /Verification: OK/, label);

      assert.ok(cms.length <= template.cmsLengthWith(tokenDer.length), `${label}: fits the B-T bound`);
      assert.ok(template.cmsLengthWith(tokenDer.length) > template.maxCmsLength + tokenDer.length);
    }
  },
);

test(
  'cmsLengthWith is the exact size with the longest signature, and never under it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const template = CmsTemplate.fromCertificates(pki.rsa.chainDer);
    const attrs = template.signedAttributes(sha256(Buffer.from('x')));
    const signature = pki.rsa.signDigest(digestToSign(attrs));
    const tokenDer = await tokenOver(sha256(signature));
    const cms = template.assemble(attrs, signature, { signatureTimeStampToken: tokenDer });
    // RSA signatures have one length, so the bound is reached exactly.
    assert.equal(cms.length, template.cmsLengthWith(tokenDer.length));
    // Header steps (127/128, 255/256 bytes...) must not make the bound fall short.
    for (let n = 100; n < 70_000; n += n < 300 ? 1 : 997) {
      assert.ok(template.cmsLengthWith(n + 1) >= template.cmsLengthWith(n), `monotone at ${n}`);
    }
    assert.throws(() => template.cmsLengthWith(0), /token length/);
    assert.throws(
      () => template.assemble(attrs, signature, { signatureTimeStampToken: Buffer.from('0401ff', 'hex') }),
      /exactly one DER ContentInfo/,
    );
  },
);

test(
  'inspectCms reports the timestamp (genTime, TSA) and checks it covers this signature',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const content = randomBytes(1000);
    const { template, attrs, signature, tokenDer, cms } = await sealBT(pki.ecdsa, content);
    const facts = checkTimestampToken(tokenDer, {
      digest: sha256(template.signatureValue(signature)),
      trustedRootsDer: [tsa.rootDer],
    });

    const seen = inspectCms(cms, content, {
      requireTimestamp: true,
      timestampTrustedRootsDer: [tsa.rootDer],
    });
    assert.deepEqual(seen.problems, []);
    assert.equal(seen.timestamp?.genTime.getTime(), facts.genTime.getTime());
    assert.match(seen.timestamp?.tsaSubject ?? '', /CN=Sealer Test TSA/);
    assert.ok(seen.timestamp?.tokenDer.equals(tokenDer));

    const untrusted = inspectCms(cms, content, { timestampTrustedRootsDer: [tsa.otherRootDer] });
    assert.match(untrusted.problems.join('\n'), /signature timestamp: .*does not chain to a trusted root/);

    // A token over another signature (a B-T CMS spliced together) is caught without any roots.
    const otherToken = await tokenOver(sha256(Buffer.from('another signature')));
    const spliced = template.assemble(attrs, signature, { signatureTimeStampToken: otherToken });
    assert.match(
      inspectCms(spliced, content).problems.join('\n'),
      /signature timestamp does not stamp this signature value/,
    );

    const bb = template.assemble(attrs, signature);
    assert.equal(inspectCms(bb, content).timestamp, undefined);
    assert.deepEqual(inspectCms(bb, content).problems, []);
    assert.deepEqual(inspectCms(bb, content, { requireTimestamp: true }).problems, [
      'CMS carries no signature timestamp (B-T)',
    ]);
  },
);

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildTimeStampReq,
  CmsTemplate,
  digestToSign,
  inspectCms,
  newNonce,
  readTimeStampResp,
  verifySealedPdf,
} from '../../src/pades';
import { embedCms, extractSignatures, preparePdf, renderSampleInvoice } from '../../src/pdf';
import { createTestPki, TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { createOpensslTsa, OpensslTsa } from './tsa-fixture';

let pki: TestPki;
let tsa: OpensslTsa;
before(async () => {
  [pki, tsa] = await Promise.all([createTestPki(), createOpensslTsa()]);
});
after(() => Promise.all([pki.cleanup(), tsa.cleanup()]));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

async function token(digest: Buffer): Promise<Buffer> {
  const reply = await tsa.reply(buildTimeStampReq({ digest, nonce: newNonce(), certReq: true }));
  return readTimeStampResp(reply).tokenDer;
}

test(
  'a B-T invoice sealed in a placeholder sized by cmsLengthWith validates in pdfsig and verifySealedPdf',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const signer of [pki.rsa, pki.ecdsa]) {
      const template = CmsTemplate.fromCertificates(signer.chainDer);
      // The placeholder is sized before the token exists: a sample token's length plus slack for
      // serial, nonce and genTime digits (openssl's vary by a few bytes).
      const sample = await token(sha256(Buffer.from('probe')));
      const prepared = await preparePdf(
        await renderSampleInvoice({
          tenantName: 'Example Tenant KK',
          invoiceNumber: `INV-BT-${signer.keyType}`,
          customerName: 'Yamada Shoji KK',
          amount: 110000,
          issueDate: '2025-01-31',
        }),
        { signingTime: new Date(), signatureBytes: template.cmsLengthWith(sample.length + 64) },
      );
      const attrs = template.signedAttributes(prepared.contentDigest);
      const signature = signer.signDigest(digestToSign(attrs), { ecdsaFormat: 'raw' });
      const tokenDer = await token(sha256(template.signatureValue(signature)));
      const sealed = embedCms(
        prepared,
        template.assemble(attrs, signature, { signatureTimeStampToken: tokenDer }),
      );

      const file = join(pki.dir, `bt-${signer.keyType}.pdf`);
      writeFileSync(file, sealed);
      const report = execFileSync('pdfsig', ['-nssdir', pki.nssDb(), file]).toString();
      assert.match(report, /Signature Validation: Signature is Valid\./, signer.keyType);
      assert.match(report, /Certificate Validation: Certificate is Trusted\./, signer.keyType);
      assert.match(report, /Total document signed/);

      const [check] = await verifySealedPdf(sealed, { trustedRootsDer: [pki.rootCertDer, tsa.rootDer] });
      assert.deepEqual(check?.problems, [], signer.keyType);
      const [sig] = extractSignatures(sealed);
      const seen = inspectCms(sig!.cmsDer, sig!.signedBytes, {
        requireTimestamp: true,
        timestampTrustedRootsDer: [tsa.rootDer],
      });
      assert.deepEqual(seen.problems, [], signer.keyType);
      assert.match(seen.timestamp?.tsaSubject ?? '', /CN=Sealer Test TSA/);
    }
  },
);

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CmsTemplate, digestToSign, verifySealedPdf } from '../../src/pades';
import { embedCms, extractSignatures, PdfError, preparePdf, renderSampleInvoice } from '../../src/pdf';
import { createTestPki, TestPki, TestSigner } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: TestPki;
let inputs: Record<'classic' | 'objectStreams' | 'qpdf', Buffer>;

before(async () => {
  pki = await createTestPki();
  const invoice = {
    tenantName: 'Example Tenant KK',
    invoiceNumber: 'INV-2025-0001',
    customerName: 'Yamada Shoji KK',
    amount: 110000,
    issueDate: '2025-01-31',
  };
  const classic = await renderSampleInvoice(invoice);
  writeFileSync(join(pki.dir, 'classic.pdf'), classic);
  execFileSync('qpdf', [
    '--object-streams=generate',
    join(pki.dir, 'classic.pdf'),
    join(pki.dir, 'qpdf.pdf'),
  ]);
  inputs = {
    classic,
    objectStreams: await renderSampleInvoice({ ...invoice, useObjectStreams: true }),
    qpdf: readFileSync(join(pki.dir, 'qpdf.pdf')),
  };
});
after(() => pki.cleanup());

/** The whole pipeline: prepare → signed attributes → remote-style signDigest → assemble → embed. */
async function seal(input: Buffer, signer: TestSigner, ecdsaFormat: 'der' | 'raw' = 'raw') {
  const template = CmsTemplate.fromCertificates(signer.chainDer);
  const prepared = await preparePdf(input, {
    signingTime: new Date(),
    reason: 'Invoice e-seal',
    name: 'Example Tenant KK',
    location: 'Tokyo, JP',
  });
  const attrs = template.signedAttributes(prepared.contentDigest);
  const cms = template.assemble(attrs, signer.signDigest(digestToSign(attrs), { ecdsaFormat }));
  return embedCms(prepared, cms);
}

function pdfsig(pdf: Buffer, name: string, args: string[]): string {
  const file = join(pki.dir, name);
  writeFileSync(file, pdf);
  // pdfsig exits 0 whatever the verdict, so the verdict is read from its report.
  return execFileSync('pdfsig', [...args, file]).toString();
}

function opensslVerify(cms: Buffer, signedBytes: Buffer, name: string): { ok: boolean; stderr: string } {
  const cmsPath = join(pki.dir, `${name}.der`);
  const contentPath = join(pki.dir, `${name}.bin`);
  writeFileSync(cmsPath, cms);
  writeFileSync(contentPath, signedBytes);
  // -purpose any: e-seal certificates are not S/MIME e-mail certificates (see cms-template.assemble test).
  const r = spawnSync('openssl', [
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
  ]);
  return { ok: r.status === 0, stderr: r.stderr.toString() };
}

for (const keyType of ['rsa', 'ecdsa'] as const) {
  for (const inputName of ['classic', 'objectStreams', 'qpdf'] as const) {
    test(
      `sealed ${inputName} invoice (${keyType}) validates in openssl, pdfsig and verifySealedPdf`,
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const signer = pki[keyType];
        const input = inputs[inputName];
        const sealed = await seal(input, signer);
        assert.ok(
          sealed.subarray(0, input.length).equals(input),
          'input is an exact byte prefix of the output',
        );

        const [sig] = extractSignatures(sealed);
        assert.ok(sig);
        const openssl = opensslVerify(sig.cmsDer, sig.signedBytes, `${keyType}-${inputName}`);
        assert.ok(openssl.ok, openssl.stderr);

        const report = pdfsig(sealed, `${keyType}-${inputName}.pdf`, ['-nssdir', pki.nssDb()]);
        assert.match(report, /Signature Type: ETSI\.CAdES\.detached/);
        assert.match(report, /Total document signed/);
        assert.match(report, /Signature Validation: Signature is Valid\./);
        assert.match(report, /Certificate Validation: Certificate is Trusted\./);
        assert.match(report, /Signer Certificate Common Name: Example Tenant KK e-seal/);

        const [check] = await verifySealedPdf(sealed, { trustedRootsDer: [pki.rootCertDer] });
        assert.deepEqual(check?.problems, []);
        assert.equal(check.valid, true);
        assert.equal(check.chainTrusted, true);
        assert.equal(check.coversWholeDocument, true);
        assert.equal(check.subFilter, 'ETSI.CAdES.detached');
        assert.equal(
          check.certificateSerialHex,
          CmsTemplate.fromCertificates(signer.chainDer).certificateSerialHex,
        );
        assert.match(check.signerSubject ?? '', /O=Example Tenant KK/);
      },
    );
  }
}

test(
  'pdfsig -nocert checks integrity alone, without any trust store',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const report = pdfsig(await seal(inputs.classic, pki.ecdsa), 'nocert.pdf', ['-nocert']);
    assert.match(report, /Signature Validation: Signature is Valid\./);
    assert.match(report, /Total document signed/);
  },
);

test(
  'flipping one byte inside the signed range fails pdfsig, openssl and verifySealedPdf',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const signer of [pki.rsa, pki.ecdsa]) {
      const sealed = await seal(inputs.classic, signer);
      // The invoice number in the document /Title is UTF-16 hex: turn INV-2025-0001 into ...0002.
      const title = sealed.indexOf('/Title <');
      const last = sealed.indexOf('0031>', title);
      assert.ok(title > 0 && last > title && last < extractSignatures(sealed)[0]!.byteRange[1]);
      const tampered = Buffer.from(sealed);
      tampered[last + 3] = 0x32;

      const report = pdfsig(tampered, `tampered-${signer.keyType}.pdf`, ['-nssdir', pki.nssDb()]);
      assert.match(report, /Signature Validation: Digest Mismatch\./);
      assert.doesNotMatch(report, /Signature is Valid/);

      const [sig] = extractSignatures(tampered);
      assert.equal(opensslVerify(sig!.cmsDer, sig!.signedBytes, `tampered-${signer.keyType}`).ok, false);

      const [check] = await verifySealedPdf(tampered, { trustedRootsDer: [pki.rootCertDer] });
      assert.equal(check?.valid, false);
      assert.match(check!.problems.join(), /message digest does not match/);
    }
  },
);

test(
  'bytes appended after the seal make verifySealedPdf report partial coverage',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const sealed = await seal(inputs.classic, pki.rsa);
    const [check] = await verifySealedPdf(Buffer.concat([sealed, Buffer.from('\n% appended\n')]));
    assert.equal(check?.valid, false);
    assert.equal(check.coversWholeDocument, false);
    assert.match(check.problems.join(), /does not cover the whole document/);
  },
);

test(
  'a second seal keeps the first valid: pdfsig and verifySealedPdf report both',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const twice = await seal(await seal(inputs.qpdf, pki.rsa), pki.ecdsa);
    const report = pdfsig(twice, 'twice.pdf', ['-nssdir', pki.nssDb()]);
    assert.equal(report.match(/Signature is Valid\./g)?.length, 2);
    const checks = await verifySealedPdf(twice, { trustedRootsDer: [pki.rootCertDer] });
    assert.deepEqual(
      checks.map((c) => [c.valid, c.coversWholeDocument]),
      [
        [true, false],
        [true, true],
      ],
    );
  },
);

test('an untrusted root is reported when trusted roots are given', { timeout: TEST_TIMEOUT_MS }, async () => {
  const sealed = await seal(inputs.classic, pki.ecdsa);
  const [check] = await verifySealedPdf(sealed, { trustedRootsDer: [pki.rsa.certDer] });
  assert.equal(check?.chainTrusted, false);
  assert.equal(check.valid, false);
  assert.match(check.problems.join(), /does not lead to a trusted root/);
});

test(
  'a CMS bigger than the placeholder is a PdfError, never a truncated signature',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const template = CmsTemplate.fromCertificates(pki.rsa.chainDer);
    const prepared = await preparePdf(inputs.classic, { signingTime: new Date(), signatureBytes: 1024 });
    const attrs = template.signedAttributes(prepared.contentDigest);
    const cms = template.assemble(attrs, pki.rsa.signDigest(digestToSign(attrs)));
    assert.ok(cms.length > 1024);
    assert.throws(() => embedCms(prepared, cms), PdfError);
  },
);

// Not a test: prints µs per invoice for each local sealing step. node --test runs every .js under
// test/, so the benchmark only runs when asked: SEALER_BENCH=1 node dist/test/pades/bench.sealing-steps.js
import { randomBytes } from 'node:crypto';
import { PDFDocument } from 'pdf-lib';
import { CmsTemplate, digestToSign, verifyCms, verifySealedPdf } from '../../src/pades';
import { embedCms, extractSignatures, preparePdf, renderSampleInvoice } from '../../src/pdf';
import { createTestPki, TestSigner } from '../helpers/test-pki';

/** Median over `rounds` of the mean µs per call across `n` calls. */
async function measure(n: number, fn: (i: number) => unknown, rounds = 5): Promise<number> {
  for (let i = 0; i < Math.min(n, 50); i++) await fn(i); // warm-up
  const means: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn(i);
    means.push(Number(process.hrtime.bigint() - t0) / 1000 / n);
  }
  return means.sort((a, b) => a - b)[Math.floor(rounds / 2)]!;
}

async function withAttachment(pdf: Buffer, bytes: number): Promise<Buffer> {
  const doc = await PDFDocument.load(pdf, { updateMetadata: false });
  await doc.attach(randomBytes(bytes), 'ledger.bin', { mimeType: 'application/octet-stream' });
  return Buffer.from(await doc.save({ useObjectStreams: false }));
}

async function benchOne(label: string, input: Buffer, signer: TestSigner): Promise<void> {
  const template = CmsTemplate.fromCertificates(signer.chainDer);
  const signingTime = new Date();
  const prepared = await preparePdf(input, {
    signingTime,
    reason: 'Invoice e-seal',
    name: 'Example Tenant KK',
  });
  const attrs = template.signedAttributes(prepared.contentDigest);
  const signature = signer.signDigest(digestToSign(attrs), { ecdsaFormat: 'raw' });
  const cms = template.assemble(attrs, signature);
  const sealed = embedCms(prepared, cms);
  const [sig] = extractSignatures(sealed);

  const rows: [string, number][] = [
    ['preparePdf', await measure(100, () => preparePdf(input, { signingTime, reason: 'Invoice e-seal' }))],
    [
      'signedAttributes + digestToSign + assemble',
      await measure(5000, () =>
        template.assemble(
          digestToSignAndReturn(template.signedAttributes(prepared.contentDigest)),
          signature,
        ),
      ),
    ],
    ['embedCms', await measure(2000, () => embedCms(prepared, cms))],
    ['extractSignatures', await measure(2000, () => extractSignatures(sealed))],
    [
      'verifyCms (expected cert)',
      await measure(2000, () =>
        verifyCms(sig!.cmsDer, sig!.signedBytes, { expectedCertificateDer: signer.certDer }),
      ),
    ],
    ['verifySealedPdf (extract + verify, no trust roots)', await measure(500, () => verifySealedPdf(sealed))],
    [
      'CmsTemplate.fromCertificates (once per credential)',
      await measure(200, () => CmsTemplate.fromCertificates(signer.chainDer)),
    ],
  ];
  console.log(`\n${label}: input ${input.length} B, sealed ${sealed.length} B, CMS ${cms.length} B`);
  for (const [name, us] of rows) console.log(`  ${name.padEnd(52)} ${us.toFixed(1).padStart(8)} µs`);
}

function digestToSignAndReturn(attrs: Buffer): Buffer {
  digestToSign(attrs);
  return attrs;
}

async function main(): Promise<void> {
  const pki = await createTestPki();
  try {
    const invoice = {
      tenantName: 'Example Tenant KK',
      invoiceNumber: 'INV-2025-0001',
      customerName: 'Yamada Shoji KK',
      amount: 110000,
      issueDate: '2025-01-31',
    };
    const small = await renderSampleInvoice(invoice);
    const large = await withAttachment(small, 45_000);
    for (const signer of [pki.rsa, pki.ecdsa]) {
      await benchOne(`${signer.keyType}, sample invoice`, small, signer);
      await benchOne(`${signer.keyType}, ~50 KB invoice`, large, signer);
    }
  } finally {
    await pki.cleanup();
  }
}

if (process.env.SEALER_BENCH === '1') {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CmsTemplate, digestToSign } from '../../src/pades';
import {
  appendDss,
  digestByteRange,
  embedCms,
  extractSignatures,
  PdfError,
  prepareDocTimestamp,
  preparePdf,
  readDss,
  renderSampleInvoice,
  SUBFILTER_ETSI_RFC3161,
  vriKey,
} from '../../src/pdf';
import { createOpensslTsa, type OpensslTsa } from '../helpers/openssl-tsa';
import { pdfsig } from '../helpers/pdfsig';
import { qpdfJson, type SignatureField } from '../helpers/qpdf-json';
import { createTestPki, type TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: TestPki;
let tsa: OpensslTsa;
let dir: string;
let nssDir: string;
let inputs: Record<'classic' | 'objectStreams' | 'qpdf', Buffer>;
const TOKEN_BYTES = 8192;

before(async () => {
  pki = await createTestPki();
  tsa = await createOpensslTsa();
  dir = await mkdtemp(join(tmpdir(), 'sealer-docts-'));
  // One trust store for the seal's root and the TSA's root, so pdfsig can judge every signature.
  nssDir = pki.nssDb();
  execFileSync('certutil', [
    '-A',
    '-d',
    `sql:${nssDir}`,
    '-n',
    'tsa-root',
    '-t',
    'CT,C,C',
    '-i',
    tsa.rootPemPath,
  ]);
  const invoice = {
    tenantName: 'Example Tenant KK',
    invoiceNumber: 'INV-2025-0099',
    customerName: 'Suzuki Ltd',
    amount: 5500,
    issueDate: '2025-03-01',
  };
  const classic = await renderSampleInvoice(invoice);
  writeFileSync(join(dir, 'classic.pdf'), classic);
  execFileSync('qpdf', ['--object-streams=generate', join(dir, 'classic.pdf'), join(dir, 'qpdf.pdf')]);
  inputs = {
    classic,
    objectStreams: await renderSampleInvoice({ ...invoice, useObjectStreams: true }),
    qpdf: readFileSync(join(dir, 'qpdf.pdf')),
  };
});
after(() => Promise.all([pki.cleanup(), tsa.cleanup(), rm(dir, { recursive: true, force: true })]));

async function seal(input: Buffer): Promise<Buffer> {
  const template = CmsTemplate.fromCertificates(pki.ecdsa.chainDer);
  const prepared = await preparePdf(input, { signingTime: new Date(), name: 'Example Tenant KK' });
  const attrs = template.signedAttributes(prepared.contentDigest);
  return embedCms(prepared, template.assemble(attrs, pki.ecdsa.signDigest(digestToSign(attrs))));
}

/** prepareDocTimestamp → openssl ts -reply over contentDigest → embedCms. */
async function timestamp(pdf: Buffer): Promise<{ out: Buffer; token: Buffer }> {
  const prepared = await prepareDocTimestamp(pdf, { signatureBytes: TOKEN_BYTES });
  assert.ok(prepared.contentDigest.equals(digestByteRange(prepared.bytes, prepared.byteRange)));
  const token = tsa.token(prepared.contentDigest);
  return { out: embedCms(prepared, token), token };
}

function assertPrefix(before: Buffer, after: Buffer, step: string): void {
  assert.ok(after.length > before.length, `${step}: something was appended`);
  assert.ok(after.subarray(0, before.length).equals(before), `${step}: the input is a byte prefix`);
}

function qpdfCheck(pdf: Buffer, name: string): void {
  const file = join(dir, `${name}-check.pdf`);
  writeFileSync(file, pdf);
  assert.match(
    execFileSync('qpdf', ['--check', file]).toString(),
    /No syntax or stream encoding errors/,
    name,
  );
}

/** The bytes a signature covers, cut by qpdf's reading of its /ByteRange, not by our extractor. */
function coveredBytes(pdf: Buffer, field: SignatureField): Buffer {
  const [s1, l1, s2, l2] = field.byteRange as [number, number, number, number];
  return Buffer.concat([pdf.subarray(s1, s1 + l1), pdf.subarray(s2, s2 + l2)]);
}

/** pdfsig's report split per signature ("Signature #1:" ...), in file order. */
async function pdfsigReport(pdf: Buffer, name: string): Promise<string[]> {
  const file = join(dir, `${name}.pdf`);
  writeFileSync(file, pdf);
  const report = await pdfsig(file, nssDir);
  return report.split(/^Signature #\d+:$/m).slice(1);
}

for (const flavour of ['classic', 'objectStreams', 'qpdf'] as const) {
  test(
    `B-LTA (${flavour}): seal, DSS, document timestamp, then renewal (DSS + timestamp); every step a prefix, all earlier signatures valid`,
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const input = inputs[flavour];
      const sealed = await seal(input);
      assertPrefix(input, sealed, 'seal');

      // B-LT: the seal's validation data, under its VRI key.
      const sealKey = vriKey(extractSignatures(sealed)[0]!.contents);
      const lt = await appendDss(sealed, {
        certs: pki.ecdsa.chainDer,
        ocsps: [],
        crls: [tsa.crl()],
        vri: new Map([[sealKey, { certs: pki.ecdsa.chainDer }]]),
      });
      assertPrefix(sealed, lt, 'DSS');

      // B-LTA: a document timestamp over everything so far, DSS included.
      const first = await timestamp(lt);
      assertPrefix(lt, first.out, 'document timestamp');
      qpdfCheck(first.out, `${flavour}-lta`);

      let fields = qpdfJson(first.out, dir, `${flavour}-lta`).signatureFields();
      assert.deepEqual(
        fields.map((f) => [f.name, f.type, f.subFilter]),
        [
          ['Signature1', '/Sig', '/ETSI.CAdES.detached'],
          ['Signature2', '/DocTimeStamp', '/ETSI.RFC3161'],
        ],
      );
      assert.equal(fields[1]!.hasM, false, 'no /M: the time is in the token');
      // The timestamp covers the whole file, DSS included, and openssl agrees with its imprint.
      const [, , s2, l2] = fields[1]!.byteRange as number[];
      assert.equal(s2! + l2!, first.out.length, 'the document timestamp runs to the end of the file');
      assert.ok(fields[1]!.byteRange[1]! > lt.length, 'its range starts after the DSS update');
      assert.match(tsa.verifyToken(first.token, coveredBytes(first.out, fields[1]!)), /Verification: OK/);

      let report = await pdfsigReport(first.out, `${flavour}-lta`);
      assert.equal(report.length, 2, 'pdfsig lists the seal and the document timestamp');
      assert.match(report[0]!, /Signature Validation: Signature is Valid\./);
      assert.match(report[0]!, /Certificate Validation: Certificate is Trusted\./);
      assert.match(report[0]!, /Not total document signed/);
      assert.match(report[1]!, /Signature Field Name: Signature2/);
      assert.match(report[1]!, /Signer Certificate Common Name: Sealer Test TSA/);
      assert.match(report[1]!, /Total document signed/);
      assert.match(
        report[1]!,
        new RegExp(`Signed Ranges: \\[0 - ${fields[1]!.byteRange[1]}\\], \\[${s2} - ${s2! + l2!}\\]`),
      );

      // Renewal: fresh validation data for the timestamp, then a new timestamp over it all.
      const tsKey = vriKey(extractSignatures(first.out)[1]!.contents);
      const renewedDss = await appendDss(first.out, {
        certs: [tsa.tsaCertDer, tsa.rootDer],
        ocsps: [tsa.ocspForTsa()],
        crls: [tsa.crl()],
        vri: new Map([[tsKey, { certs: [tsa.tsaCertDer, tsa.rootDer] }]]),
      });
      assertPrefix(first.out, renewedDss, 'renewal DSS');
      const second = await timestamp(renewedDss);
      assertPrefix(renewedDss, second.out, 'renewal timestamp');
      qpdfCheck(second.out, `${flavour}-renewed`);

      const view = qpdfJson(second.out, dir, `${flavour}-renewed`);
      fields = view.signatureFields();
      assert.deepEqual(
        fields.map((f) => [f.name, f.type]),
        [
          ['Signature1', '/Sig'],
          ['Signature2', '/DocTimeStamp'],
          ['Signature3', '/DocTimeStamp'],
        ],
      );
      const dss = view.dss()!;
      assert.deepEqual(
        dss.certs,
        [...pki.ecdsa.chainDer, tsa.tsaCertDer, tsa.rootDer],
        'old entries kept, new added',
      );
      assert.equal(dss.crls.length, 2);
      assert.equal(dss.ocsps.length, 1);
      assert.deepEqual(Object.keys(dss.vri).sort(), [sealKey, tsKey].sort());
      // Both tokens still verify over the ranges they cover.
      assert.match(tsa.verifyToken(first.token, coveredBytes(second.out, fields[1]!)), /Verification: OK/);
      assert.match(tsa.verifyToken(second.token, coveredBytes(second.out, fields[2]!)), /Verification: OK/);

      report = await pdfsigReport(second.out, `${flavour}-renewed`);
      assert.equal(report.length, 3);
      assert.match(
        report[0]!,
        /Signature Validation: Signature is Valid\./,
        'the seal survives every update',
      );
      assert.match(report[1]!, /Not total document signed/);
      assert.match(report[2]!, /Signature Field Name: Signature3/);
      assert.match(report[2]!, /Total document signed/);

      const sigs = extractSignatures(second.out);
      assert.deepEqual(
        sigs.map((s) => [s.type, s.subFilter, s.coversWholeDocument, s.problems.length]),
        [
          ['Sig', 'ETSI.CAdES.detached', false, 0],
          ['DocTimeStamp', SUBFILTER_ETSI_RFC3161, false, 0],
          ['DocTimeStamp', SUBFILTER_ETSI_RFC3161, true, 0],
        ],
      );
      assert.ok(sigs[2]!.cmsDer.equals(second.token), 'extractSignatures returns the token without padding');
      assert.deepEqual((await readDss(second.out)).vriKeys.sort(), [sealKey, tsKey].sort());
    },
  );
}

test(
  'prepareDocTimestamp writes /Type /DocTimeStamp /SubFilter /ETSI.RFC3161 without /M, in the input xref flavour',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const [flavour, input] of Object.entries(inputs)) {
      const sealed = await seal(input);
      const p = await prepareDocTimestamp(sealed, { signatureBytes: 4096 });
      const update = p.bytes.subarray(sealed.length).toString('latin1');
      assert.match(update, /\/Type \/DocTimeStamp\n\/Filter \/Adobe\.PPKLite\n\/SubFilter \/ETSI\.RFC3161\n/);
      assert.doesNotMatch(update, /\/M \(/, flavour);
      assert.equal(p.byteRange[2] - p.byteRange[1], 4096 * 2 + 2, `${flavour}: room for 4096 bytes`);
      assert.equal(p.byteRange[2] + p.byteRange[3], p.bytes.length);
      if (flavour === 'classic') assert.match(update, /\nxref\n/);
      else assert.match(update, /\/Type \/XRef/, flavour);
      const [, placeholder] = extractSignatures(p.bytes);
      assert.equal(placeholder?.type, 'DocTimeStamp');
      assert.match(placeholder!.problems.join(), /empty placeholder/);
    }
  },
);

test(
  'a token bigger than the document timestamp placeholder is refused, not truncated',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const sealed = await seal(inputs.classic);
    const p = await prepareDocTimestamp(sealed, { signatureBytes: 512 });
    const token = tsa.token(p.contentDigest);
    assert.ok(token.length > 512, 'a token with the TSA chain is larger than 512 bytes');
    assert.throws(
      () => embedCms(p, token),
      (e: unknown) => e instanceof PdfError && /does not fit/.test(e.message),
    );
    await assert.rejects(prepareDocTimestamp(sealed, { signatureBytes: 10 }), /signatureBytes/);
  },
);

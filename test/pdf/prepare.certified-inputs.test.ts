import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CmsTemplate, digestToSign } from '../../src/pades';
import { embedCms, PdfError, preparePdf, renderSampleInvoice, type PreparedPdf } from '../../src/pdf';
import { pdfsig } from '../helpers/pdfsig';
import { createTestPki, type TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { certifiedPdf, type CertifyOptions } from './certified-fixture';

let pki: TestPki;
let invoice: Buffer;
const signingTime = new Date('2025-02-01T01:02:03Z');

before(async () => {
  pki = await createTestPki();
  invoice = await renderSampleInvoice({
    tenantName: 'Example Tenant KK',
    invoiceNumber: 'INV-2025-0042',
    customerName: 'Yamada Shoji KK',
    amount: 110000,
    issueDate: '2025-01-31',
  });
});
after(() => pki.cleanup()); // also removes the files written for pdfsig and qpdf

const certify = (options: Omit<CertifyOptions, 'signer' | 'signingTime'>) =>
  certifiedPdf(invoice, { signer: pki.rsa, signingTime, ...options });

/** The production path after prepare: signed attributes, a remote-style signDigest, assemble, embed. */
function seal(prepared: PreparedPdf): Buffer {
  const template = CmsTemplate.fromCertificates(pki.ecdsa.chainDer);
  const attrs = template.signedAttributes(prepared.contentDigest);
  return embedCms(prepared, template.assemble(attrs, pki.ecdsa.signDigest(digestToSign(attrs))));
}

interface PdfsigSignature {
  field: string;
  valid: boolean;
  trusted: boolean;
  total: boolean;
}

/** pdfsig's verdict per signature, trusting only the test root, and the fields it reports unsigned. */
async function validate(
  pdf: Buffer,
  name: string,
): Promise<{ signed: PdfsigSignature[]; unsigned: string[] }> {
  const file = join(pki.dir, name);
  writeFileSync(file, pdf);
  const blocks = (await pdfsig(file, pki.nssDb())).split(/^Signature #\d+:$/m).slice(1);
  const fieldName = (block: string) => /Signature Field Name: (.*)$/m.exec(block)?.[1] ?? '';
  const isUnsigned = (block: string) => /The signature form field is not signed/.test(block);
  const unsigned = blocks.filter(isUnsigned).map(fieldName);
  const signed = blocks
    .filter((block) => !isUnsigned(block))
    .map((block) => ({
      field: /Signature Field Name: (.*)$/m.exec(block)?.[1] ?? '',
      valid: /Signature Validation: Signature is Valid\./.test(block),
      trusted: /Certificate Validation: Certificate is Trusted\./.test(block),
      total: /^\s*- Total document signed$/m.test(block),
    }));
  return { signed, unsigned };
}

/** Numbers of the objects an update (classic xref) defines. */
function objectsIn(update: string): number[] {
  return [...update.matchAll(/(?:^|\n)(\d+) 0 obj\b/g)].map((m) => Number(m[1]));
}

/** Object number of the input's field whose /T is `name` (the fixture writes one object per field). */
function fieldObject(pdf: Buffer, name: string): number {
  const text = pdf.toString('latin1');
  const at = text.lastIndexOf(`/T (${name})`);
  const head = [...text.slice(0, at).matchAll(/(?:^|\n)(\d+) 0 obj\b/g)].pop();
  assert.ok(head, `field ${name} found in the input`);
  return Number(head[1]);
}

function qpdfCheck(pdf: Buffer, name: string): string {
  const file = join(pki.dir, name);
  writeFileSync(file, pdf);
  return execFileSync('qpdf', ['--check', file]).toString();
}

for (const p of [2, 3, undefined] as const) {
  test(
    `a certified input with DocMDP ${p === undefined ? 'P absent (means 2)' : `P=${p}`} is sealed into its empty signature field and stays certified`,
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const input = await certify({ p, emptyFields: [{ name: 'SealHere' }] });
      const before = await validate(input, `cert-${p}.pdf`);
      assert.deepEqual(before, {
        signed: [{ field: 'Certification', valid: true, trusted: true, total: true }],
        unsigned: ['SealHere'],
      });

      const prepared = await preparePdf(input, { signingTime, reason: 'Invoice e-seal' });
      assert.equal(prepared.fieldName, 'SealHere');
      assert.equal(prepared.filledExistingField, true);
      assert.equal(prepared.lockPermission, undefined);
      const sealed = seal(prepared);
      assert.ok(sealed.subarray(0, input.length).equals(input), 'the certified input is a byte prefix');

      // Filling the field is the only change to what the certification covers: the update
      // defines the field object again (now with /V) and new objects, not the catalog, page or form.
      const update = sealed.subarray(input.length).toString('latin1');
      const inputSize = Number(
        /\/Size (\d+)/.exec(input.toString('latin1', input.lastIndexOf('trailer')))?.[1],
      );
      const rewritten = objectsIn(update).filter((n) => n < inputSize);
      assert.deepEqual(rewritten, [fieldObject(input, 'SealHere')]);
      assert.doesNotMatch(
        update,
        /\/Type \/Catalog|\/Type \/Page\b|\/Subtype \/Widget[\s\S]*\/T \(Signature/,
      );
      assert.match(update, /\/T \(SealHere\)[\s\S]*\/V \d+ 0 R/);

      const after = await validate(sealed, `sealed-${p}.pdf`);
      assert.deepEqual(after, {
        signed: [
          { field: 'SealHere', valid: true, trusted: true, total: true },
          { field: 'Certification', valid: true, trusted: true, total: false },
        ],
        unsigned: [],
      });
      assert.match(qpdfCheck(sealed, `sealed-${p}.pdf`), /No syntax or stream encoding errors found/);
    },
  );
}

test(
  'a certified input with DocMDP P=1 is refused: sealing it would break its certification',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // Even with an empty signature field waiting: P=1 allows no change at all, signing included.
    const input = await certify({ p: 1, emptyFields: [{ name: 'SealHere' }] });
    await assert.rejects(preparePdf(input, { signingTime }), (e: unknown) => {
      assert.ok(e instanceof PdfError);
      assert.equal(
        e.message,
        'input PDF is certified with DocMDP permission P=1 (no changes allowed): sealing it would break its certification',
      );
      return true;
    });
  },
);

test(
  'a P=2 or P=3 certified input without an empty signature field is refused, since adding a field breaks the certification',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const p of [2, 3] as const) {
      const input = await certify({ p });
      await assert.rejects(preparePdf(input, { signingTime }), (e: unknown) => {
        assert.ok(e instanceof PdfError);
        assert.match(e.message, new RegExp(`certified with DocMDP permission P=${p} `));
        assert.match(
          e.message,
          /has no empty signature field to seal: adding a new signature field would break its certification/,
        );
        return true;
      });
    }
  },
);

test(
  'an empty signature field locked by the certification’s FieldMDP is not filled; an unlocked one is',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const lockedOnly = await certify({
      p: 2,
      emptyFields: [{ name: 'Approver' }],
      certificationLock: { action: 'Include', fields: ['Approver'] },
    });
    await assert.rejects(preparePdf(lockedOnly, { signingTime }), (e: unknown) => {
      assert.ok(e instanceof PdfError);
      assert.match(
        e.message,
        /empty signature field\(s\) Approver are locked by FieldMDP of the signature\(s\) in Certification/,
      );
      return true;
    });

    const withFree = await certify({
      p: 2,
      emptyFields: [{ name: 'Approver' }, { name: 'Seal' }],
      certificationLock: { action: 'Exclude', fields: ['Seal'] },
    });
    const prepared = await preparePdf(withFree, { signingTime });
    assert.equal(prepared.fieldName, 'Seal');
    const update = prepared.bytes.subarray(withFree.length).toString('latin1');
    assert.doesNotMatch(update, /\/T \(Approver\)/, 'the locked field is not touched');
    const after = await validate(seal(prepared), 'fieldmdp.pdf');
    assert.deepEqual(after.unsigned, ['Approver']);
    assert.deepEqual(
      after.signed.map((s) => [s.field, s.valid]),
      [
        ['Seal', true],
        ['Certification', true],
      ],
    );
  },
);

test(
  'the /Lock of the field we seal is honoured: a FieldMDP reference with its /P, and a P=1 lock then refuses the next seal',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const input = await certify({
      p: 2,
      emptyFields: [{ name: 'SealHere', lock: { action: 'All', p: 1 } }, { name: 'Spare' }],
    });
    const prepared = await preparePdf(input, { signingTime, certifiedFieldName: 'SealHere' });
    assert.equal(prepared.fieldName, 'SealHere');
    assert.equal(prepared.lockPermission, 1, 'reported: the document is locked once sealed');
    const update = prepared.bytes.subarray(input.length).toString('latin1');
    const sigDict = /\/Type \/Sig\n[\s\S]*?\nendobj/.exec(update)?.[0] ?? '';
    assert.match(sigDict, /\/TransformMethod \/FieldMDP/);
    assert.match(sigDict, /\/Action \/All/);
    assert.match(sigDict, /\/P 1\b/);
    assert.match(sigDict, /\/Data \d+ 0 R/);
    // prepare finds /Contents and /ByteRange even with the /Reference array after them.
    const sealed = seal(prepared);
    const after = await validate(sealed, 'locked.pdf');
    assert.deepEqual(after.unsigned, ['Spare']);
    assert.deepEqual(
      after.signed.map((s) => [s.field, s.valid, s.total]),
      [
        ['SealHere', true, true],
        ['Certification', true, false],
      ],
    );

    // The lock's P=1 now forbids every change, although an empty field (Spare) is left.
    await assert.rejects(preparePdf(sealed, { signingTime }), (e: unknown) => {
      assert.ok(e instanceof PdfError);
      assert.match(
        e.message,
        /locked by the signature in field SealHere with permission P=1 \(no changes allowed\): sealing it would break that signature/,
      );
      return true;
    });
  },
);

test(
  'with several empty signature fields the seal takes only the one it is told to, never a guess',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const input = await certify({
      p: 2,
      emptyFields: [{ name: 'Customer' }, { name: 'CompanySeal' }, { name: 'Auditor' }],
      certificationLock: { action: 'Include', fields: ['Auditor'] },
    });
    await assert.rejects(preparePdf(input, { signingTime }), (e: unknown) => {
      assert.ok(e instanceof PdfError);
      assert.match(e.message, /has 2 empty signature fields \(Customer, CompanySeal\): name the one/);
      return true;
    });
    await assert.rejects(
      preparePdf(input, { signingTime, certifiedFieldName: 'Seal' }),
      /no empty signature field named Seal \(empty ones: Customer, CompanySeal, Auditor\)/,
    );
    await assert.rejects(
      preparePdf(input, { signingTime, certifiedFieldName: 'Auditor' }),
      /field\(s\) Auditor are locked by FieldMDP of the signature\(s\) in Certification/,
    );
    const prepared = await preparePdf(input, { signingTime, certifiedFieldName: 'CompanySeal' });
    assert.equal(prepared.fieldName, 'CompanySeal');
    const after = await validate(seal(prepared), 'named.pdf');
    assert.deepEqual(after.unsigned, ['Customer', 'Auditor']);
    assert.deepEqual(
      after.signed.map((s) => [s.field, s.valid]),
      [
        ['CompanySeal', true],
        ['Certification', true],
      ],
    );
  },
);

test(
  'an uncertified input, even one with an approval signature, still gets a new seal field',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const once = await preparePdf(invoice, { signingTime });
    assert.equal(once.filledExistingField, false);
    assert.equal(once.fieldName, 'Signature1');
    const sealed = seal(once);
    const twice = await preparePdf(sealed, { signingTime });
    assert.equal(twice.fieldName, 'Signature2');
    const after = await validate(seal(twice), 'uncertified.pdf');
    // pdfsig lists fields in /Fields order; the newer seal is the one that covers the whole file.
    assert.deepEqual(
      after.signed.map((s) => [s.field, s.valid, s.total]),
      [
        ['Signature1', true, false],
        ['Signature2', true, true],
      ],
    );
  },
);

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { embedCms, extractSignatures, PdfError, preparePdf, renderSampleInvoice } from '../../src/pdf';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const signingTime = new Date('2025-02-01T01:02:03Z');

/** A stand-in CMS: a DER SEQUENCE of `n` bytes in total (embedCms does not interpret it). */
function fakeCms(n: number): Buffer {
  const body = randomBytes(n - 4);
  return Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
}

async function prepared(signatureBytes = 4096) {
  const input = await renderSampleInvoice({
    tenantName: 'Example Tenant KK',
    invoiceNumber: 'INV-7',
    customerName: 'Sato Trading',
    amount: 5500,
    issueDate: '2025-03-01',
  });
  return preparePdf(input, { signingTime, signatureBytes });
}

test(
  'embedCms writes the CMS as hex into the placeholder and changes nothing else',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const p = await prepared();
    const cms = fakeCms(1500);
    const out = embedCms(p, cms);
    assert.equal(out.length, p.bytes.length);
    const [, a, b] = p.byteRange;
    assert.ok(out.subarray(0, a).equals(p.bytes.subarray(0, a)), 'first range untouched');
    assert.ok(out.subarray(b).equals(p.bytes.subarray(b)), 'second range untouched');
    assert.equal(out.toString('latin1', a + 1, a + 1 + 3000), cms.toString('hex'));
    assert.match(out.toString('latin1', a + 1 + 3000, b), /^0+>$/);
    const sig = extractSignatures(out)[0]!;
    assert.ok(sig.cmsDer.equals(cms), 'extractSignatures returns the CMS without padding');
    assert.equal(sig.coversWholeDocument, true);
    assert.deepEqual(sig.problems, []);
    assert.ok(
      p.bytes.subarray(a + 1, b - 1).every((c) => c === 0x30),
      'the prepared value is not mutated',
    );
  },
);

test('embedCms accepts a CMS that exactly fills the placeholder', { timeout: TEST_TIMEOUT_MS }, async () => {
  const p = await prepared(2048);
  const out = embedCms(p, fakeCms(2048));
  assert.equal(extractSignatures(out)[0]?.cmsDer.length, 2048);
});

test(
  'embedCms refuses a CMS bigger than the placeholder instead of truncating it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const p = await prepared(2048);
    assert.throws(
      () => embedCms(p, fakeCms(2049)),
      (e: unknown) =>
        e instanceof PdfError && /2049 bytes does not fit the 2048-byte placeholder/.test(e.message),
    );
  },
);

test('embedCms refuses to fill a placeholder twice', { timeout: TEST_TIMEOUT_MS }, async () => {
  const p = await prepared();
  const sealed = embedCms(p, fakeCms(1000));
  assert.throws(() => embedCms({ ...p, bytes: sealed }, fakeCms(1000)), /not empty/);
});

test(
  'embedCms works on a PreparedPdf that crossed a worker-thread boundary (structured clone)',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const p = await prepared();
    const cloned = structuredClone(p);
    assert.ok(!Buffer.isBuffer(cloned.bytes), 'structured clone turns Buffers into Uint8Arrays');
    const cms = fakeCms(900);
    assert.ok(embedCms(cloned, cms).equals(embedCms(p, cms)));
  },
);

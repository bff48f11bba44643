import { test } from 'node:test';
import assert from 'node:assert/strict';
import { embedCms, extractSignatures, preparePdf, renderSampleInvoice } from '../../src/pdf';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const signingTime = new Date('2025-02-01T01:02:03Z');
const invoice = {
  tenantName: 'Example Tenant KK',
  invoiceNumber: 'INV-9',
  customerName: 'Suzuki Ltd',
  amount: 1100,
  issueDate: '2025-03-01',
};
const cms = Buffer.concat([Buffer.from([0x30, 0x81, 0x80]), Buffer.alloc(0x80, 7)]);

test('extractSignatures finds nothing in an unsigned PDF', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.deepEqual(extractSignatures(await renderSampleInvoice(invoice)), []);
});

test(
  'extractSignatures reports a prepared but never sealed placeholder as a problem',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const p = await preparePdf(await renderSampleInvoice(invoice), { signingTime });
    const [sig] = extractSignatures(p.bytes);
    assert.deepEqual(sig?.byteRange, p.byteRange);
    assert.equal(sig.cmsDer.length, 0);
    assert.equal(sig.subFilter, 'ETSI.CAdES.detached');
    assert.match(sig.problems.join(), /empty placeholder/);
  },
);

test(
  'extractSignatures returns signatures oldest first; only the newest covers the whole file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const first = embedCms(await preparePdf(await renderSampleInvoice(invoice), { signingTime }), cms);
    const second = embedCms(await preparePdf(first, { signingTime }), cms);
    const sigs = extractSignatures(second);
    assert.equal(sigs.length, 2);
    assert.equal(
      sigs[0]!.byteRange[2] + sigs[0]!.byteRange[3],
      first.length,
      'first covers its own revision',
    );
    assert.deepEqual(
      sigs.map((s) => s.coversWholeDocument),
      [false, true],
    );
    assert.ok(sigs[0]!.signedBytes.equals(extractSignatures(first)[0]!.signedBytes));
  },
);

test(
  'extractSignatures flags a ByteRange whose gap is not the /Contents string',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const sealed = embedCms(await preparePdf(await renderSampleInvoice(invoice), { signingTime }), cms);
    const text = sealed.toString('latin1');
    const m = /\/ByteRange \[0 (\d+) (\d+) (\d+)( *)\]/.exec(text)!;
    // Shift the gap 10 bytes left: it no longer starts at '<' of /Contents.
    const forged = `/ByteRange [0 ${Number(m[1]) - 10} ${m[2]} ${Number(m[3])}${m[4]}]`.padEnd(
      m[0].length,
      ' ',
    );
    const tampered = Buffer.from(text.replace(m[0], forged.slice(0, m[0].length - 1) + ']'), 'latin1');
    const [sig] = extractSignatures(tampered);
    assert.equal(sig?.coversWholeDocument, false);
    assert.match(sig!.problems.join(), /not exactly the \/Contents hex string/);
  },
);

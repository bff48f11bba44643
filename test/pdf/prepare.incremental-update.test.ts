import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PdfError, preparePdf, renderSampleInvoice } from '../../src/pdf';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const invoice = {
  tenantName: 'Example Tenant KK',
  invoiceNumber: 'INV-2025-0001',
  customerName: 'Yamada Shoji KK',
  amount: 110000,
  issueDate: '2025-01-31',
};
const signingTime = new Date('2025-02-01T01:02:03Z');

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'sealer-pdf-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function inputs(): Promise<{
  classic: Buffer;
  objectStreams: Buffer;
  qpdf: Buffer;
  noFinalNewline: Buffer;
}> {
  const classic = await renderSampleInvoice(invoice);
  const objectStreams = await renderSampleInvoice({ ...invoice, useObjectStreams: true });
  const qpdf = await withTemp(async (dir) => {
    await writeFile(join(dir, 'in.pdf'), classic);
    execFileSync('qpdf', ['--object-streams=generate', join(dir, 'in.pdf'), join(dir, 'out.pdf')]);
    return readFile(join(dir, 'out.pdf'));
  });
  const noFinalNewline = classic.subarray(0, classic.lastIndexOf('%%EOF') + 5);
  return { classic, objectStreams, qpdf, noFinalNewline };
}

test(
  'preparePdf appends one update: input is an exact prefix, ByteRange and digest match the bytes',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const [name, input] of Object.entries(await inputs())) {
      const p = await preparePdf(input, {
        signingTime,
        reason: 'Invoice e-seal',
        name: 'Example Tenant KK',
        location: 'Tokyo',
      });
      assert.equal(p.inputLength, input.length, name);
      assert.ok(p.bytes.subarray(0, input.length).equals(input), `${name}: input is a byte prefix`);
      const update = p.bytes.subarray(input.length).toString('latin1');
      assert.equal(update.match(/%%EOF/g)?.length, 1, `${name}: exactly one update appended`);
      assert.equal(update.match(/startxref/g)?.length, 1, name);

      const [s1, l1, s2, l2] = p.byteRange;
      assert.equal(s1, 0);
      assert.equal(s2 + l2, p.bytes.length, `${name}: second range runs to the end`);
      assert.equal(s2 - l1, 2 + p.signatureBytes * 2, `${name}: the gap is exactly <hex>`);
      assert.equal(p.bytes.toString('latin1', l1, l1 + 1), '<');
      assert.equal(p.bytes.toString('latin1', s2 - 1, s2), '>');
      assert.match(p.bytes.toString('latin1', l1 - 10, l1), /\/Contents $/);
      const written = /\/ByteRange \[0 (\d+) (\d+) (\d+) *\]/.exec(update);
      assert.deepEqual(
        written?.slice(1).map(Number),
        [l1, s2, l2],
        `${name}: ByteRange written into the file`,
      );

      const expected = createHash('sha256')
        .update(p.bytes.subarray(0, l1))
        .update(p.bytes.subarray(s2))
        .digest();
      assert.ok(p.contentDigest.equals(expected), `${name}: contentDigest is SHA-256 of the ranges`);

      // The signature dictionary stays out of object streams and carries the PAdES entries.
      assert.match(update, /\/Type \/Sig\n\/Filter \/Adobe\.PPKLite\n\/SubFilter \/ETSI\.CAdES\.detached\n/);
      assert.match(update, /\/M \(D:20250201010203Z\)/);
      assert.match(update, /\/Reason \(Invoice e-seal\)/);
      assert.match(update, /\/Name \(Example Tenant KK\)/);
      assert.match(update, /\/Location \(Tokyo\)/);

      await withTemp(async (dir) => {
        await writeFile(join(dir, 'p.pdf'), p.bytes);
        const out = execFileSync('qpdf', ['--check', join(dir, 'p.pdf')]).toString();
        assert.match(out, /No syntax or stream encoding errors found/, name);
        const fields = execFileSync('qpdf', ['--show-npages', join(dir, 'p.pdf')])
          .toString()
          .trim();
        assert.equal(fields, '1', name);
      });
    }
  },
);

test(
  'preparePdf writes the update in the same xref flavour as the input',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { classic, objectStreams, qpdf } = await inputs();
    const update = async (input: Buffer) =>
      (await preparePdf(input, { signingTime })).bytes.subarray(input.length).toString('latin1');
    assert.match(await update(classic), /\nxref\n[\s\S]*trailer/);
    assert.match(await update(objectStreams), /\/Type \/XRef/);
    assert.doesNotMatch(await update(objectStreams), /\nxref\n/);
    assert.match(await update(qpdf), /\/Type \/XRef/);
  },
);

test(
  'preparePdf encodes non-ASCII and parenthesised text as UTF-16BE hex strings',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const input = await renderSampleInvoice(invoice);
    const p = await preparePdf(input, { signingTime, reason: '請求書 (e-seal)', name: '株式会社サンプル' });
    const update = p.bytes.subarray(input.length).toString('latin1');
    const reason = /\/Reason <FEFF([0-9A-F]+)>/.exec(update)?.[1];
    assert.ok(reason, 'Reason is a hex string with a BOM');
    assert.equal(Buffer.from(reason, 'hex').swap16().toString('utf16le'), '請求書 (e-seal)');
    const name = /\/Name <FEFF([0-9A-F]+)>/.exec(update)?.[1];
    assert.equal(Buffer.from(name!, 'hex').swap16().toString('utf16le'), '株式会社サンプル');
  },
);

test('preparePdf is a pure function of its input and options', { timeout: TEST_TIMEOUT_MS }, async () => {
  const input = await renderSampleInvoice(invoice);
  const a = await preparePdf(input, { signingTime, reason: 'r' });
  const b = await preparePdf(input, { signingTime, reason: 'r' });
  assert.ok(a.bytes.equals(b.bytes));
  assert.deepEqual(a.byteRange, b.byteRange);
  const c = await preparePdf(input, { signingTime: new Date('2025-02-01T01:02:04Z'), reason: 'r' });
  assert.ok(!c.contentDigest.equals(a.contentDigest), 'the signing time is covered by the digest');
});

test(
  'preparePdf reserves signatureBytes (default 8192) as twice as many hex digits',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const input = await renderSampleInvoice(invoice);
    const def = await preparePdf(input, { signingTime });
    assert.equal(def.signatureBytes, 8192);
    assert.equal(def.byteRange[2] - def.byteRange[1], 8192 * 2 + 2);
    const small = await preparePdf(input, { signingTime, signatureBytes: 3000 });
    assert.equal(small.byteRange[2] - small.byteRange[1], 3000 * 2 + 2);
  },
);

test(
  'preparePdf rejects what it cannot seal with a PdfError naming the reason',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const input = await renderSampleInvoice(invoice);
    await assert.rejects(preparePdf(Buffer.from('hello, not a pdf'), { signingTime }), (e: unknown) => {
      assert.ok(e instanceof PdfError);
      assert.match(e.message, /not a PDF/);
      return true;
    });
    await assert.rejects(preparePdf(input.subarray(0, input.length - 200), { signingTime }), (e: unknown) => {
      assert.ok(e instanceof PdfError);
      assert.match(e.message, /%%EOF|startxref/);
      return true;
    });
    await assert.rejects(preparePdf(input, { signingTime, signatureBytes: 10 }), /signatureBytes/);
    await assert.rejects(preparePdf(input, { signingTime: new Date('nope') }), /signingTime/);
  },
);

test(
  'preparePdf names a second seal field uniquely when the input already has one',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const input = await renderSampleInvoice(invoice);
    const once = await preparePdf(input, { signingTime });
    const twice = await preparePdf(once.bytes, { signingTime });
    const update = twice.bytes.subarray(once.bytes.length).toString('latin1');
    assert.match(update, /\/T \(Signature2\)/);
    assert.ok(twice.bytes.subarray(0, once.bytes.length).equals(once.bytes));
  },
);

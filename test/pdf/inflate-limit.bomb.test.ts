// The cap on bytes pdf-lib inflates while loading: bombs in object and xref streams are refused, the
// cap is a total per document over every stream and filter stage, and objects inside compressed
// streams still load as pdf-lib loaded them (filter chains, a wrong Adler-32 tolerated as pdf.js does).
// Refusals go through the pdf-lib path itself: the fast path (seal-update.fast-path.test.ts) never
// inflates a stream it does not read, so a bomb it does not touch costs it nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { DEFAULT_MAX_INFLATED_BYTES, PdfLimitError, preparePdf, type PrepareOptions } from '../../src/pdf';
import {
  buildPdf,
  objectStreamBomb,
  objectStreamContents,
  ONE_PAGE,
  xrefStreamBomb,
  type PdfObject,
} from '../helpers/bomb-pdf';
import { preparePdfWithPdfLib } from '../../src/pdf/prepare';

const TIMEOUT = { timeout: 120_000 };
const MiB = 1024 * 1024;
const options: PrepareOptions = { signingTime: new Date('2025-02-01T00:00:00Z') };

async function refusal(input: Buffer, maxInflatedBytes?: number): Promise<PdfLimitError> {
  const err = await preparePdfWithPdfLib(input, { ...options, maxInflatedBytes }).then(
    () => assert.fail('expected the input to be refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof PdfLimitError, `a PdfLimitError, got ${String(err)}`);
  return err;
}

/** A PDF whose catalog, pages and page live in one object stream encoded by `encode`. */
function catalogInObjectStream(encode: (contents: Buffer) => { filter: string; data: Buffer }): {
  pdf: Buffer;
  inflated: number;
} {
  const objects = [
    '<< /Type /Catalog /Pages 3 0 R >>',
    '<< /Type /Pages /Kids [4 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 3 0 R /MediaBox [0 0 595 842] >>',
  ];
  const { data, entries } = objectStreamContents(2, objects);
  const encoded = encode(data);
  return {
    pdf: buildPdf([{ dict: `${entries} /Filter ${encoded.filter}`, data: encoded.data }], 2),
    inflated: data.length,
  };
}

test('an object-stream bomb and an xref-stream bomb are refused at the cap', TIMEOUT, async () => {
  for (const [name, bomb] of [
    ['ObjStm', objectStreamBomb(256)],
    ['XRef', xrefStreamBomb(256)],
  ] as const) {
    assert.ok(bomb.length < 300_000, `${name}: a small file (${bomb.length} bytes)`);
    const err = await refusal(bomb, MiB);
    assert.equal(err.limit, 'inflatedBytes');
    assert.equal(err.maxBytes, MiB);
    assert.match(
      err.message,
      new RegExp(`inflates to more than 1048576 bytes \\(/${name} of \\d+ compressed bytes\\)`),
    );
  }
});

test('the default cap refuses a 256 MiB bomb', TIMEOUT, async () => {
  const err = await refusal(objectStreamBomb(256));
  assert.equal(err.maxBytes, DEFAULT_MAX_INFLATED_BYTES);
});

test('the cap is a total per document: two streams under it each are over it together', TIMEOUT, async () => {
  const padded = (n: number): PdfObject => {
    const { data, entries } = objectStreamContents(10 + n, [`<< /Pad (${'x'.repeat(600 * 1024)}) >>`]);
    return { dict: `${entries} /Filter /FlateDecode`, data: zlib.deflateSync(data) };
  };
  const pdf = buildPdf([...ONE_PAGE, padded(0), padded(1)]);
  const each = 600 * 1024 + 40;
  assert.equal((await refusal(pdf, 2 * each - 1024)).limit, 'inflatedBytes');
  const prepared = await preparePdf(pdf, { ...options, maxInflatedBytes: 2 * each + 1024 });
  assert.equal(prepared.inputLength, pdf.length);
});

test('objects inside compressed streams still load, with every filter stage counted', TIMEOUT, async () => {
  // Flate alone: the document opens only if its catalog was decoded from the stream.
  const flate = catalogInObjectStream((c) => ({ filter: '/FlateDecode', data: zlib.deflateSync(c) }));
  assert.equal((await preparePdf(flate.pdf, options)).inputLength, flate.pdf.length);
  await refusal(flate.pdf, flate.inflated - 1);
  await preparePdf(flate.pdf, { ...options, maxInflatedBytes: flate.inflated });

  // A wrong Adler-32 at the end: pdf.js's inflater ignores it, and so do we.
  const badAdler = catalogInObjectStream((c) => {
    const data = zlib.deflateSync(c);
    data.writeUInt8(data.readUInt8(data.length - 1) ^ 0xff, data.length - 1);
    return { filter: '/FlateDecode', data };
  });
  assert.equal((await preparePdf(badAdler.pdf, options)).inputLength, badAdler.pdf.length);

  // ASCIIHex then Flate: both stages' outputs are held, so both count.
  let deflatedLength = 0;
  const chain = catalogInObjectStream((c) => {
    const deflated = zlib.deflateSync(c);
    deflatedLength = deflated.length;
    return { filter: '[/ASCIIHexDecode /FlateDecode]', data: Buffer.from(`${deflated.toString('hex')}>`) };
  });
  const both = chain.inflated + deflatedLength;
  assert.equal(
    (await preparePdf(chain.pdf, { ...options, maxInflatedBytes: both })).inputLength,
    chain.pdf.length,
  );
  await refusal(chain.pdf, both - 1);
});

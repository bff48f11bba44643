// A visible 角印 seal, checked from the outside: poppler renders the page (pdftoppm) and it must match
// a reference image within a tolerance and be red where the stamp is; pdfsig must still call the
// signature valid; pdffonts must show the font embedded as a subset.
//
// Regenerate the reference images after an intended change to the drawing (then look at them):
//   npx tsc -p tsconfig.json && SEALER_UPDATE_SEAL_REFERENCE=1 \
//     node --test --test-timeout=180000 dist/test/pdf/seal-appearance.render.test.js
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fontkit from '@pdf-lib/fontkit';
import pixelmatch from 'pixelmatch';
import { PNG } from 'pngjs';
import {
  PDFArray,
  PDFDict,
  PDFDocument,
  PDFName,
  PDFNumber,
  PDFRawStream,
  PDFRef,
  decodePDFRawStream,
} from 'pdf-lib';
import { CmsTemplate, digestToSign } from '../../src/pades';
import {
  embedCms,
  PdfError,
  preparePdf,
  renderSampleInvoice,
  sealLegend,
  type SealAppearance,
} from '../../src/pdf';
import { sealColumns } from '../../src/pdf/seal-appearance';
import { createTestPki, TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'seal-appearance');
const UPDATE_REFERENCE = process.env.SEALER_UPDATE_SEAL_REFERENCE === '1';
/** pixelmatch's per-pixel colour threshold, and the share of pixels allowed to differ. */
const PIXEL_THRESHOLD = 0.1;
const MAX_DIFFERING_SHARE = 0.005;
/** Within the stamp's square: one character of twelve changed differs in ~1.6 % of it. */
const MAX_STAMP_DIFFERING_SHARE = 0.01;

const signingTime = new Date('2025-02-01T01:02:03Z');
const TENANT_NAME = '株式会社サンプル商事';
const stampAt = { page: 1, x: 440, y: 690, size: 84 } as const;

let pki: TestPki;
let dir: string;
let input: Buffer;

before(async () => {
  pki = await createTestPki();
  dir = await mkdtemp(join(tmpdir(), 'sealer-seal-appearance-'));
  input = await renderSampleInvoice({
    tenantName: 'Sample Shoji KK',
    invoiceNumber: 'INV-2025-0100',
    customerName: 'Yamada Trading',
    amount: 330000,
    issueDate: '2025-01-31',
  });
});
after(async () => {
  await pki.cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function seal(appearance: SealAppearance): Promise<Buffer> {
  const template = CmsTemplate.fromCertificates(pki.ecdsa.chainDer);
  const prepared = await preparePdf(input, { signingTime, name: TENANT_NAME, appearance });
  const attrs = template.signedAttributes(prepared.contentDigest);
  return embedCms(prepared, template.assemble(attrs, pki.ecdsa.signDigest(digestToSign(attrs))));
}

function renderPage(pdf: Buffer, name: string, page: number): PNG {
  const file = join(dir, `${name}.pdf`);
  writeFileSync(file, pdf);
  const prefix = join(dir, name);
  execFileSync('pdftoppm', [
    '-r',
    '72',
    '-png',
    '-f',
    String(page),
    '-l',
    String(page),
    '-singlefile',
    file,
    prefix,
  ]);
  return PNG.sync.read(readFileSync(`${prefix}.png`));
}

/**
 * Compares with the committed reference (or rewrites it in update mode): the share of the page's
 * pixels that differ, and the share within the stamp's square, where a whole-page share would hide
 * a stamp drawn a few points off.
 */
function compareWithReference(rendered: PNG, referenceName: string): { page: number; stamp: number } {
  const referencePath = join(FIXTURES, referenceName);
  if (UPDATE_REFERENCE) {
    mkdirSync(FIXTURES, { recursive: true });
    writeFileSync(referencePath, PNG.sync.write(rendered));
  }
  const reference = PNG.sync.read(readFileSync(referencePath));
  assert.equal(rendered.width, reference.width, 'rendered width matches the reference');
  assert.equal(rendered.height, reference.height, 'rendered height matches the reference');
  const diff = new PNG({ width: rendered.width, height: rendered.height });
  const differing = pixelmatch(rendered.data, reference.data, diff.data, rendered.width, rendered.height, {
    threshold: PIXEL_THRESHOLD,
  });
  // pixelmatch paints differing pixels pure red (255, 0, 0) in the diff image.
  const top = rendered.height - (stampAt.y + stampAt.size);
  let inStamp = 0;
  for (let row = top; row < top + stampAt.size; row++) {
    for (let col = stampAt.x; col < stampAt.x + stampAt.size; col++) {
      const i = (row * diff.width + col) * 4;
      if (diff.data[i] === 255 && diff.data[i + 1] === 0 && diff.data[i + 2] === 0) inStamp++;
    }
  }
  return {
    page: differing / (rendered.width * rendered.height),
    stamp: inStamp / (stampAt.size * stampAt.size),
  };
}

function assertLooksLike(rendered: PNG, referenceName: string): void {
  const share = compareWithReference(rendered, referenceName);
  const percent = (n: number) => `${(n * 100).toFixed(3)} %`;
  assert.ok(
    share.page < MAX_DIFFERING_SHARE,
    `${percent(share.page)} of the page differs from ${referenceName}`,
  );
  assert.ok(
    share.stamp < MAX_STAMP_DIFFERING_SHARE,
    `${percent(share.stamp)} of the stamp's square differs from ${referenceName}`,
  );
}

/** Share of seal-red pixels inside and outside the stamp's square (72 dpi: one pixel per point). */
function redShares(
  png: PNG,
  at: { x: number; y: number; size: number },
): { inside: number; outside: number } {
  const top = png.height - (at.y + at.size);
  let inside = 0;
  let insideRed = 0;
  let outsideRed = 0;
  for (let row = 0; row < png.height; row++) {
    for (let col = 0; col < png.width; col++) {
      const i = (row * png.width + col) * 4;
      const red = png.data[i]! > 150 && png.data[i + 1]! < 100 && png.data[i + 2]! < 100;
      const within = col >= at.x && col < at.x + at.size && row >= top && row < top + at.size;
      if (within) {
        inside++;
        if (red) insideRed++;
      } else if (red) {
        outsideRed++;
      }
    }
  }
  return { inside: insideRed / inside, outside: outsideRed };
}

function pdfsigReport(pdf: Buffer, name: string): string {
  const file = join(dir, `${name}-sig.pdf`);
  writeFileSync(file, pdf);
  return execFileSync('pdfsig', ['-nssdir', pki.nssDb(), file]).toString();
}

function pdffonts(pdf: Buffer, name: string): string {
  const file = join(dir, `${name}-fonts.pdf`);
  writeFileSync(file, pdf);
  return execFileSync('pdffonts', [file]).toString();
}

async function widgetOf(pdf: Buffer): Promise<{ doc: PDFDocument; widget: PDFDict }> {
  const doc = await PDFDocument.load(pdf, { updateMetadata: false });
  const fields = doc.catalog.lookup(PDFName.of('AcroForm'), PDFDict).lookup(PDFName.of('Fields'), PDFArray);
  return { doc, widget: fields.lookup(fields.size() - 1, PDFDict) };
}

function numbers(array: PDFArray): number[] {
  return array.asArray().map((n) => (n as PDFNumber).asNumber());
}

/** A 120x90 RGBA "tenant seal": a red ring with a bar, transparent around it (deterministic). */
function tenantPng(): Buffer {
  const png = new PNG({ width: 120, height: 90 });
  for (let y = 0; y < png.height; y++) {
    for (let x = 0; x < png.width; x++) {
      const i = (y * png.width + x) * 4;
      const r = Math.hypot(x - 60, y - 45);
      const ink = (r > 34 && r < 42) || (Math.abs(y - 45) < 5 && r < 34);
      png.data.set(ink ? [204, 26, 26, 255] : [255, 255, 255, 0], i);
    }
  }
  return PNG.sync.write(png);
}

test(
  'a text seal renders as the reference, red at its square, with a valid signature and a subset font',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const sealed = await seal({ ...stampAt, text: TENANT_NAME });
    assert.ok(sealed.subarray(0, input.length).equals(input), 'the input stays a byte prefix');
    assert.equal(sealed.subarray(input.length).toString('latin1').match(/%%EOF/g)?.length, 1, 'one update');

    const page = renderPage(sealed, 'text-seal', stampAt.page);
    assertLooksLike(page, 'text-seal-page1.png');
    if (!UPDATE_REFERENCE) {
      // The tolerance still notices a stamp 3 points off (~31 % of the square), or one character changed.
      const moved = renderPage(await seal({ ...stampAt, x: stampAt.x - 3, text: TENANT_NAME }), 'moved', 1);
      const movedShare = compareWithReference(moved, 'text-seal-page1.png');
      assert.ok(
        movedShare.stamp > MAX_STAMP_DIFFERING_SHARE,
        `a moved stamp differs: ${JSON.stringify(movedShare)}`,
      );
      const other = renderPage(await seal({ ...stampAt, text: '株式会社サンプル商会' }), 'other', 1);
      const otherShare = compareWithReference(other, 'text-seal-page1.png');
      assert.ok(
        otherShare.stamp > MAX_STAMP_DIFFERING_SHARE,
        `another name differs: ${JSON.stringify(otherShare)}`,
      );
    }
    const red = redShares(page, stampAt);
    assert.ok(red.inside > 0.25, `stamp square is ${(red.inside * 100).toFixed(1)} % red`);
    assert.equal(red.outside, 0, 'no red outside the stamp square');

    // The same invoice without a seal renders without any red: the stamp is the widget's, not the page's.
    const plain = renderPage((await preparePdf(input, { signingTime })).bytes, 'plain', 1);
    assert.equal(redShares(plain, stampAt).inside, 0);

    const report = pdfsigReport(sealed, 'text-seal');
    assert.match(report, /Signature Validation: Signature is Valid\./);
    assert.match(report, /Total document signed/);
    assert.match(report, /Certificate Validation: Certificate is Trusted\./);

    assert.match(
      pdffonts(sealed, 'text-seal'),
      /^[A-Z]{6}\+NotoSerifJP-Bold\s+CID TrueType\s+Identity-H\s+yes\s+yes\s+yes\s/m,
      'the seal font is embedded (emb), as a subset (sub), with a ToUnicode map (uni)',
    );
  },
);

test(
  'the widget sits on the square: /Rect, print flag, /P, and an /AP form with /BBox and font resources',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const sealed = await seal({ ...stampAt, text: TENANT_NAME });
    const { doc, widget } = await widgetOf(sealed);
    const { x, y, size } = stampAt;
    assert.deepEqual(numbers(widget.lookup(PDFName.of('Rect'), PDFArray)), [x, y, x + size, y + size]);
    assert.equal(widget.lookup(PDFName.of('F'), PDFNumber).asNumber() & 4, 4, 'printed');
    const pageRef = widget.get(PDFName.of('P')) as PDFRef;
    assert.equal(pageRef.toString(), doc.getPage(0).ref.toString());
    const annots = doc.getPage(0).node.lookup(PDFName.of('Annots'), PDFArray);
    assert.ok(annots.asArray().some((r) => r.toString() === doc.context.getObjectRef(widget)?.toString()));
    const form = widget.lookup(PDFName.of('AP'), PDFDict).lookup(PDFName.of('N')) as PDFRawStream;
    assert.deepEqual(numbers(form.dict.lookup(PDFName.of('BBox'), PDFArray)), [0, 0, size, size]);
    const fonts = form.dict.lookup(PDFName.of('Resources'), PDFDict).lookup(PDFName.of('Font'), PDFDict);
    assert.ok(fonts.lookup(PDFName.of('F1'), PDFDict), 'the appearance carries its own font resource');
  },
);

test(
  'every glyph of the embedded subset has the outline of the font it came from',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // Guards the glyph-record padding: without it @pdf-lib/fontkit shifts glyphs after an odd-length one.
    const text = '東京都千代田区丸の内株式会社アイウ';
    const legend = sealLegend(text);
    const sealed = await seal({ ...stampAt, text });
    const { doc } = await widgetOf(sealed);
    const descriptor = [...doc.context.enumerateIndirectObjects()]
      .map(([, o]) => o)
      .find((o): o is PDFDict => o instanceof PDFDict && o.has(PDFName.of('FontFile2')));
    assert.ok(descriptor, 'a FontFile2 is embedded');
    const program = decodePDFRawStream(descriptor.lookup(PDFName.of('FontFile2')) as PDFRawStream).decode();
    const subset = fontkit.create(Buffer.from(program));
    const original = fontkit.create(
      readFileSync(require.resolve('@expo-google-fonts/noto-serif-jp/700Bold/NotoSerifJP_700Bold.ttf')),
    );
    const unique = [...new Set(legend)];
    assert.equal(
      subset.numGlyphs,
      unique.length + 1,
      'the subset holds .notdef and the legend, nothing else',
    );
    unique.forEach((ch, i) => {
      const want = original.layout(ch, { vert: true }).glyphs[0]!;
      const got = subset.getGlyph(i + 1);
      assert.equal(got.path.toSVG(), want.path.toSVG(), `${ch}: same outline`);
      assert.deepEqual(got.bbox, want.bbox, `${ch}: same bounding box`);
      assert.equal(got.advanceWidth, want.advanceWidth, `${ch}: same advance`);
    });
  },
);

test(
  'a tenant PNG renders fitted into the square as the reference, with a valid signature',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const sealed = await seal({ ...stampAt, text: TENANT_NAME, imagePng: tenantPng() });
    assert.ok(sealed.subarray(0, input.length).equals(input));
    const page = renderPage(sealed, 'png-seal', stampAt.page);
    assertLooksLike(page, 'png-seal-page1.png');
    const red = redShares(page, stampAt);
    assert.ok(red.inside > 0.1, `stamp square is ${(red.inside * 100).toFixed(1)} % red`);
    assert.equal(red.outside, 0, 'no red outside the stamp square');

    const report = pdfsigReport(sealed, 'png-seal');
    assert.match(report, /Signature Validation: Signature is Valid\./);
    assert.match(report, /Total document signed/);

    const { widget } = await widgetOf(sealed);
    const form = widget.lookup(PDFName.of('AP'), PDFDict).lookup(PDFName.of('N')) as PDFRawStream;
    const xobjects = form.dict
      .lookup(PDFName.of('Resources'), PDFDict)
      .lookup(PDFName.of('XObject'), PDFDict);
    const image = xobjects.lookup(PDFName.of('Im1')) as PDFRawStream;
    assert.equal(image.dict.lookup(PDFName.of('Width'), PDFNumber).asNumber(), 120);
    assert.ok(image.dict.has(PDFName.of('SMask')), 'transparency kept as a soft mask');
    assert.doesNotMatch(pdffonts(sealed, 'png-seal'), /NotoSerifJP/, 'no font for an image seal');
  },
);

test(
  'a sealed appearance is a pure function of input and options',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const appearance = { ...stampAt, text: TENANT_NAME };
    const a = await preparePdf(input, { signingTime, appearance });
    const b = await preparePdf(input, { signingTime, appearance });
    assert.ok(a.bytes.equals(b.bytes));
    const c = await preparePdf(input, { signingTime, appearance: { ...appearance, imagePng: tenantPng() } });
    const d = await preparePdf(input, { signingTime, appearance: { ...appearance, imagePng: tenantPng() } });
    assert.ok(c.bytes.equals(d.bytes));
  },
);

test('without an appearance the widget stays invisible', { timeout: TEST_TIMEOUT_MS }, async () => {
  const p = await preparePdf(input, { signingTime });
  const { widget } = await widgetOf(p.bytes);
  assert.deepEqual(numbers(widget.lookup(PDFName.of('Rect'), PDFArray)), [0, 0, 0, 0]);
  assert.doesNotMatch(p.bytes.subarray(input.length).toString('latin1'), /FontFile2|CompanySeal/);
});

test(
  'the legend gets 之印 or 印, whichever fills the grid, laid out right to left',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    // 8 + 印 fills 3x3; 4 + 之印 fills 3x2 (4 + 印 would leave a cell empty); 10 + 之印 fills 4x3.
    assert.equal(sealLegend('株式会社山田商事').join(''), '株式会社山田商事印');
    assert.equal(sealLegend('山田商事').join(''), '山田商事之印');
    assert.equal(sealLegend(TENANT_NAME).join(''), '株式会社サンプル商事之印');
    assert.equal(sealLegend('株式会社 山田　商事').join(''), '株式会社山田商事印', 'whitespace dropped');
    assert.equal(sealLegend('山田商事之印').join(''), '山田商事之印', 'a legend ending in 印 is kept');
    assert.deepEqual(sealColumns(sealLegend(TENANT_NAME)), [
      ['株', '式', '会', '社'],
      ['サ', 'ン', 'プ', 'ル'],
      ['商', '事', '之', '印'],
    ]);
    assert.deepEqual(
      sealColumns([...'ABCDE']),
      [
        ['A', 'B', 'C'],
        ['D', 'E'],
      ],
      'only the last (leftmost) column is short',
    );
  },
);

test(
  'bad appearances are refused with a PdfError naming what is wrong',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const refuses = async (appearance: SealAppearance, message: RegExp) =>
      assert.rejects(preparePdf(input, { signingTime, appearance }), (e: unknown) => {
        assert.ok(e instanceof PdfError, `PdfError, got ${String(e)}`);
        assert.match(e.message, message);
        return true;
      });
    const ok = { ...stampAt, text: TENANT_NAME };
    await refuses({ ...ok, page: 0 }, /page 0 is not a page of this 1-page document/);
    await refuses({ ...ok, page: 2 }, /page 2 is not a page of this 1-page document/);
    await refuses({ ...ok, page: 1.5 }, /page 1.5 is not a page/);
    await refuses({ ...ok, size: 0 }, /size must be more than 0/);
    await refuses({ ...ok, size: -5 }, /size must be more than 0/);
    await refuses({ ...ok, x: Number.NaN }, /x must be a finite number/);
    await refuses({ ...ok, x: 540 }, /not inside its CropBox \[0 0 595\.28 841\.89\]/);
    await refuses({ ...ok, y: -1 }, /not inside its CropBox/);
    await refuses({ ...ok, text: '  　' }, /text is empty/);
    await refuses({ ...stampAt }, /needs text .* or imagePng/);
    await refuses({ ...ok, text: '株式会社😀' }, /characters the seal font lacks: 😀 \(U\+1F600\)/);
    await refuses({ ...ok, text: '株'.repeat(40) }, /at most 36/);
    await refuses(
      { ...ok, imagePng: Buffer.from('GIF89a not a png at all, long enough to read') },
      /not a PNG/,
    );
    const truncated = tenantPng().subarray(0, 60);
    await refuses({ ...ok, imagePng: truncated }, /imagePng could not be decoded/);
    const huge = Buffer.from(tenantPng());
    huge.writeUInt32BE(5000, 16); // IHDR width
    await refuses({ ...ok, imagePng: huge }, /5000x90 pixels; each side must be 1 to 2048/);
  },
);

test(
  'a seal on page 2 of 2 is drawn there only, and a second sealing keeps the first signature valid',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const onePage = join(dir, 'one-page.pdf');
    writeFileSync(onePage, input);
    const twoPagesPath = join(dir, 'two-pages.pdf');
    execFileSync('qpdf', ['--empty', '--pages', onePage, onePage, '--', twoPagesPath]);
    const twoPages = readFileSync(twoPagesPath);

    const template = CmsTemplate.fromCertificates(pki.rsa.chainDer);
    const sealOnce = async (pdf: Buffer, appearance: SealAppearance) => {
      const prepared = await preparePdf(pdf, { signingTime, appearance });
      const attrs = template.signedAttributes(prepared.contentDigest);
      return embedCms(prepared, template.assemble(attrs, pki.rsa.signDigest(digestToSign(attrs))));
    };
    const first = await sealOnce(twoPages, { ...stampAt, page: 2, text: TENANT_NAME });
    assert.equal(redShares(renderPage(first, 'two-pages-p1', 1), stampAt).inside, 0, 'page 1 has no stamp');
    assert.ok(redShares(renderPage(first, 'two-pages-p2', 2), stampAt).inside > 0.25, 'page 2 has it');
    const { doc, widget } = await widgetOf(first);
    assert.equal((widget.get(PDFName.of('P')) as PDFRef).toString(), doc.getPage(1).ref.toString());
    const page1Annots = doc.getPage(0).node.lookupMaybe(PDFName.of('Annots'), PDFArray);
    assert.equal(page1Annots?.size() ?? 0, 0, 'page 1 gets no widget');

    const second = await sealOnce(first, { ...stampAt, x: 60, page: 1, text: '山田商事' });
    assert.ok(second.subarray(0, first.length).equals(first), 'the first sealed file is a byte prefix');
    const report = pdfsigReport(second, 'twice');
    assert.equal(report.match(/Signature Validation: Signature is Valid\./g)?.length, 2, report);
    assert.match(report, /Signature #2:[\s\S]*Total document signed/);
    const page1 = renderPage(second, 'twice-p1', 1);
    assert.ok(redShares(page1, { ...stampAt, x: 60 }).inside > 0.25, 'the second stamp is on page 1');
  },
);

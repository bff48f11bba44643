// What a qualified invoice shows, read back by poppler (pdftotext, pdffonts), and the input the
// renderer refuses: every refusal a PdfError naming the field or the template's part.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { PDFDocument, rgb } from 'pdf-lib';
import { formatYen, PdfError, renderQualifiedInvoice, type InvoiceDocument } from '../../src/pdf';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { mixedRateInvoice, TEMPLATE, withTotals } from './qualified-invoice-fixture';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sealer-qualified-invoice-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let written = 0;
function save(pdf: Uint8Array): string {
  const file = join(dir, `invoice-${++written}.pdf`);
  writeFileSync(file, pdf);
  return file;
}

/** pdftotext -layout, runs of blanks made one space, so a row reads "label value label value". */
function textOf(pdf: Uint8Array): string[] {
  const text = execFileSync('pdftotext', ['-layout', save(pdf), '-']).toString();
  return text.split('\n').map((line) => line.replace(/\s+/g, ' ').trim());
}

/** In one line, in this order; blanks are not compared (pdftotext drops a narrow one, as in "1式"). */
function assertHasLine(lines: string[], expected: string): void {
  const bare = (s: string) => s.replace(/ /g, '');
  assert.ok(
    lines.some((line) => bare(line).includes(bare(expected))),
    `no line of the text includes ${JSON.stringify(expected)}:\n${lines.join('\n')}`,
  );
}

function logoPng(): Buffer {
  const png = new PNG({ width: 160, height: 40 });
  for (let i = 0; i < png.data.length; i += 4) {
    const x = (i / 4) % 160;
    png.data.set(x < 40 ? [31, 58, 95, 255] : [255, 255, 255, 0], i);
  }
  return PNG.sync.write(png);
}

/** A small real JPEG, made by poppler from a page with a coloured square. */
async function logoJpeg(): Promise<Buffer> {
  const doc = await PDFDocument.create();
  doc.addPage([80, 30]).drawRectangle({ x: 5, y: 5, width: 20, height: 20, color: rgb(0.8, 0.1, 0.1) });
  const file = save(await doc.save());
  execFileSync('pdftoppm', ['-r', '72', '-jpeg', '-singlefile', file, join(dir, 'logo')]);
  return readFileSync(join(dir, 'logo.jpg'));
}

test(
  'a mixed-rate invoice shows every item a qualified invoice must, with its exact figures',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const lines = textOf(await renderQualifiedInvoice(mixedRateInvoice(), TEMPLATE));
    for (const expected of [
      '請求書',
      '山田物産株式会社 御中',
      '請求書番号 INV-2025-0042',
      '発行日 2025年4月30日',
      '株式会社サンプル商事',
      '登録番号 T1234567890123',
      '〒100-0005 東京都千代田区丸の内1-2-3',
      'ご請求金額',
      '¥51,176',
      '取引期間 2025年4月1日 〜 2025年4月30日',
      'お支払期限 2025年5月31日',
      '単価・金額は税抜表示です',
      '取引日 品目 数量 単価（税抜） 税率 金額（税抜）',
      '2025/04/03 コピー用紙 A4 500枚入 10 箱 ¥3,200 10% ¥32,000',
      '2025/04/10 ※ 緑茶 ペットボトル 500ml 24 本 ¥120 8% ¥2,880',
      '2025/04/10 ※ 会議用弁当（幕の内） 12 個 ¥850 8% ¥10,200',
      '2025/04/15 収入印紙代 1 式 ¥200 非課税 ¥200',
      '※は軽減税率対象',
      '小計（税抜） ¥46,780',
      '10%対象（税抜） ¥33,500 消費税 ¥3,350',
      '8%対象※（税抜） ¥13,080 消費税 ¥1,046',
      '非課税 ¥200',
      '消費税合計 ¥4,396',
      'ご請求金額（税込） ¥51,176',
      'お振込先',
      'みずほ銀行 丸の内支店 普通 1234567',
      'この請求書は電子署名（eシール）付きで発行されています。',
    ]) {
      assertHasLine(lines, expected);
    }
    // The wrapped description keeps all its characters, in order, over its lines.
    const joined = lines.join('');
    assert.ok(joined.includes('オフィス什器の配送および設置作業一式'));
    assert.ok(joined.includes('旧什器の引取りを含む）'));
  },
);

test(
  'a 税込 invoice says so and shows the tax included per rate; a single transaction date is shown as such',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const base = mixedRateInvoice();
    const doc: InvoiceDocument = {
      ...base,
      prices: 'including',
      transactionPeriod: undefined,
      transactionDate: '2025-04-25',
      dueDate: undefined,
      payee: undefined,
      lines: base.lines.map(({ transactionDate: _, ...line }) => line),
    };
    const lines = textOf(await renderQualifiedInvoice(doc));
    for (const expected of [
      '取引年月日 2025年4月25日',
      '単価・金額は税込表示です',
      '品目 数量 単価（税込） 税率 金額（税込）',
      '合計（税込） ¥51,176',
      '10%対象（税込） ¥36,850 内消費税 ¥3,350',
      '8%対象※（税込） ¥14,126 内消費税 ¥1,046',
      'ご請求金額（税込） ¥51,176',
    ]) {
      assertHasLine(lines, expected);
    }
    assert.ok(!lines.some((l) => l.includes('お支払期限') || l.includes('お振込先')));
    assert.ok(!lines.some((l) => l.includes('取引日')), 'no date column when no line has a date');
  },
);

test('yen amounts are grouped without the locale', { timeout: TEST_TIMEOUT_MS }, () => {
  assert.equal(formatYen(0), '¥0');
  assert.equal(formatYen(999), '¥999');
  assert.equal(formatYen(1234), '¥1,234');
  assert.equal(formatYen(1234567890), '¥1,234,567,890');
  assert.equal(formatYen(-5000), '-¥5,000');
});

test('the fonts are Noto Sans JP, embedded as subsets with tags', { timeout: TEST_TIMEOUT_MS }, async () => {
  const report = execFileSync('pdffonts', [
    save(await renderQualifiedInvoice(mixedRateInvoice(), TEMPLATE)),
  ]).toString();
  const fonts = report.split('\n').slice(2).filter(Boolean);
  assert.equal(fonts.length, 2, report);
  for (const weight of ['Regular', 'Bold']) {
    const row = fonts.find((f) => f.includes(`NotoSansJP-${weight}`));
    assert.ok(row, `NotoSansJP-${weight} in\n${report}`);
    assert.match(row, /^[A-Z]{6}\+NotoSansJP-\w+\s+CID TrueType\s+Identity-H\s+yes yes yes/);
  }
});

test(
  'a wrapped description stays within its column, and a long figure shrinks instead of spilling',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const base = mixedRateInvoice();
    const long = base.lines[4]!.description;
    const doc = withTotals({
      ...base,
      lines: [...base.lines, { ...base.lines[0]!, quantity: '1234567.5', unit: 'kg', amount: 987654321 }],
    });
    const file = save(await renderQualifiedInvoice(doc, TEMPLATE));
    const html = execFileSync('pdftotext', ['-bbox', file, '-']).toString();
    const words = [
      ...html.matchAll(/<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)<\/word>/g),
    ].map((m) => ({ xMin: Number(m[1]), xMax: Number(m[2]), text: m[3]! }));
    // The description column ends where the quantity column starts: 15 mm margin, then 58 + 72 + 38 + 80 pt.
    const descriptionRight = 595.28 - (15 * 72) / 25.4 - (58 + 72 + 38 + 80);
    const pieces = words.filter(
      (w) => w.text.length >= 3 && /[\u3000-\u9fff]/.test(w.text) && long.includes(w.text),
    );
    assert.ok(pieces.length >= 3, `pieces of the long description: ${JSON.stringify(pieces)}`);
    for (const w of pieces)
      assert.ok(w.xMax <= descriptionRight, `${w.text} ends at ${w.xMax} > ${descriptionRight}`);
    const quantity = words.find((w) => w.text === '1,234,567.5');
    assert.ok(quantity, 'the long quantity is drawn whole');
    assert.ok(quantity.xMin >= descriptionRight, `quantity starts at ${quantity.xMin}`);
    assert.ok(words.some((w) => w.text === '¥987,654,321'));
  },
);

test(
  'a logo, PNG or JPEG, is drawn; other bytes are refused naming the logo',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const logo of [logoPng(), await logoJpeg()]) {
      const pdf = await renderQualifiedInvoice(mixedRateInvoice(), { ...TEMPLATE, logo });
      const images = execFileSync('pdfimages', ['-list', save(pdf)]).toString();
      assert.equal(images.split('\n').slice(2).filter(Boolean).length >= 1, true, images);
    }
    const doc = mixedRateInvoice();
    for (const [logo, pattern] of [
      [Buffer.from('GIF89a not a logo'), /template logo is neither a PNG nor a JPEG/],
      [
        Buffer.concat([logoPng().subarray(0, 40), Buffer.alloc(20)]),
        /template logo could not be decoded as a PNG/,
      ],
      [Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]), /template logo could not be decoded as a JPEG/],
    ] as const) {
      await assert.rejects(renderQualifiedInvoice(doc, { logo }), (e: unknown) => {
        assert.ok(e instanceof PdfError, String(e));
        assert.match(e.message, pattern);
        return true;
      });
    }
  },
);

test(
  'bad colours, dates and undrawable characters are PdfErrors naming the field',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const doc = mixedRateInvoice();
    const cases: [InvoiceDocument, Parameters<typeof renderQualifiedInvoice>[1], RegExp][] = [
      [doc, { accentColour: 'navy' }, /template accentColour "navy" is not a colour written '#RRGGBB'/],
      [doc, { textColour: '#12345' }, /template textColour "#12345" is not a colour/],
      [
        { ...doc, issueDate: '2025-02-30' },
        {},
        /invoice INV-2025-0042: issueDate "2025-02-30" is not a date/,
      ],
      [
        { ...doc, recipientName: '山田物産😀株式会社' },
        {},
        /invoice INV-2025-0042: recipientName .* cannot draw: "😀" \(U\+1F600\)/,
      ],
      [
        { ...doc, lines: doc.lines.map((l, i) => (i === 2 ? { ...l, description: 'タブ\tあり' } : l)) },
        {},
        /lines\[2\]\.description .* cannot draw: "\\t" \(U\+0009\)/,
      ],
      [doc, { footer: '\u{1F4C4} footer' }, /template\.footer .*U\+1F4C4/],
      [
        doc,
        { addressBlock: Array<string>(80).fill('東京都千代田区') },
        /the first page has no room for the lines/,
      ],
      [
        { ...doc, issuer: { ...doc.issuer, registrationNumber: '1234567890123' } },
        {},
        /issuer\.registrationNumber/,
      ],
      [
        { ...doc, lines: doc.lines.map((l) => ({ ...l, unitPrice: '12,00' })) },
        {},
        /lines\[0\]\.unitPrice "12,00" is not a decimal/,
      ],
    ];
    for (const [input, template, pattern] of cases) {
      await assert.rejects(renderQualifiedInvoice(input, template), (e: unknown) => {
        assert.ok(e instanceof PdfError, String(e));
        assert.match(e.message, pattern);
        return true;
      });
    }
  },
);

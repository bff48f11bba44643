// Page 1 of the mixed-rate invoice as poppler draws it (pdftoppm, 50 dpi) must match a committed
// reference image: at most 0.5 % of the page's pixels may differ, and no 24-pixel tile more than
// 8 %, so a block that is missing or moved (the totals, the table) fails even where the whole-page
// share would hide it. A negative control checks that the comparison sees such a change.
//
// Regenerate the reference after an intended change to the layout (then look at it):
//   npx tsc -p tsconfig.json && SEALER_UPDATE_INVOICE_REFERENCE=1 \
//     node --test --test-timeout=180000 dist/test/pdf/render-qualified-invoice.reference.test.js
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pixelmatch from 'pixelmatch';
import { PNG } from 'pngjs';
import { renderQualifiedInvoice, type InvoiceDocument } from '../../src/pdf';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { mixedRateInvoice, TEMPLATE, withTotals } from './qualified-invoice-fixture';

const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'qualified-invoice');
const REFERENCE = 'mixed-rate-page1.png';
const UPDATE_REFERENCE = process.env.SEALER_UPDATE_INVOICE_REFERENCE === '1';
/** pixelmatch's per-pixel colour threshold, the share of the page and of any tile allowed to differ. */
const PIXEL_THRESHOLD = 0.1;
const MAX_PAGE_SHARE = 0.005;
const TILE = 24;
const MAX_TILE_SHARE = 0.08;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sealer-qualified-reference-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function renderPage1(doc: InvoiceDocument, name: string): Promise<PNG> {
  const file = join(dir, `${name}.pdf`);
  writeFileSync(file, await renderQualifiedInvoice(doc, TEMPLATE));
  const prefix = join(dir, name);
  execFileSync('pdftoppm', ['-r', '50', '-png', '-f', '1', '-l', '1', '-singlefile', file, prefix]);
  return PNG.sync.read(readFileSync(`${prefix}.png`));
}

/** Shares of differing pixels: over the page, and in its worst tile. */
function difference(rendered: PNG, reference: PNG): { page: number; worstTile: number } {
  assert.equal(rendered.width, reference.width, 'rendered width matches the reference');
  assert.equal(rendered.height, reference.height, 'rendered height matches the reference');
  const { width, height } = rendered;
  const diff = new PNG({ width, height });
  const differing = pixelmatch(rendered.data, reference.data, diff.data, width, height, {
    threshold: PIXEL_THRESHOLD,
  });
  let worstTile = 0;
  for (let top = 0; top < height; top += TILE) {
    for (let left = 0; left < width; left += TILE) {
      let n = 0;
      let red = 0;
      for (let row = top; row < Math.min(top + TILE, height); row++) {
        for (let col = left; col < Math.min(left + TILE, width); col++) {
          n++;
          // pixelmatch paints differing pixels pure red (255, 0, 0) in the diff image.
          const i = (row * width + col) * 4;
          if (diff.data[i] === 255 && diff.data[i + 1] === 0 && diff.data[i + 2] === 0) red++;
        }
      }
      worstTile = Math.max(worstTile, red / n);
    }
  }
  return { page: differing / (width * height), worstTile };
}

function within(share: { page: number; worstTile: number }): boolean {
  return share.page <= MAX_PAGE_SHARE && share.worstTile <= MAX_TILE_SHARE;
}

const percent = (n: number) => `${(n * 100).toFixed(3)} %`;

test(
  'page 1 of the mixed-rate invoice looks like the reference image',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const rendered = await renderPage1(mixedRateInvoice(), 'mixed');
    const referencePath = join(FIXTURES, REFERENCE);
    if (UPDATE_REFERENCE) {
      mkdirSync(FIXTURES, { recursive: true });
      writeFileSync(referencePath, PNG.sync.write(rendered));
    }
    const share = difference(rendered, PNG.sync.read(readFileSync(referencePath)));
    assert.ok(
      within(share),
      `${percent(share.page)} of the page and ${percent(share.worstTile)} of its worst tile differ from ${REFERENCE}`,
    );
  },
);

test(
  'the comparison fails when a block of the page changes (negative control)',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const reference = PNG.sync.read(readFileSync(join(FIXTURES, REFERENCE)));
    const base = mixedRateInvoice();
    // One line fewer: the table is shorter and the totals block moves up with other figures.
    const shorter = await renderPage1(withTotals({ ...base, lines: base.lines.slice(0, 4) }), 'shorter');
    const share = difference(shorter, reference);
    assert.ok(
      !within(share),
      `one line fewer differs by only ${percent(share.page)} / ${percent(share.worstTile)}`,
    );
  },
);

// An invoice longer than a page: the table header on every page, the issuer and recipient on the
// first only (a short header naming the invoice on the others), "n / N" on each, the totals after the
// last line, on a page of their own when they do not fit under it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderQualifiedInvoice, type InvoiceDocument } from '../../src/pdf';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { longInvoice, TEMPLATE } from './qualified-invoice-fixture';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sealer-qualified-pages-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Each page's text (pdftotext -layout, form feeds between pages), blanks removed. */
async function pagesOf(doc: InvoiceDocument, name: string): Promise<string[]> {
  const file = join(dir, `${name}.pdf`);
  writeFileSync(file, await renderQualifiedInvoice(doc, TEMPLATE));
  const info = execFileSync('pdfinfo', [file]).toString();
  const count = Number(/Pages:\s+(\d+)/.exec(info)![1]);
  const text = execFileSync('pdftotext', ['-layout', file, '-']).toString();
  const pages = text.split('\f').slice(0, count);
  assert.equal(pages.length, count);
  return pages.map((p) => p.replace(/\s+/g, ''));
}

test(
  'sixty lines run over several pages with the header repeated, page numbers, and totals at the end',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const doc = longInvoice(60);
    const pages = await pagesOf(doc, 'sixty');
    assert.ok(pages.length >= 2, `${pages.length} pages`);
    const n = pages.length;
    pages.forEach((page, i) => {
      assert.ok(page.includes(`${i + 1}/${n}`), `page ${i + 1} says ${i + 1} / ${n}`);
      assert.ok(page.includes('取引日品目数量単価（税抜）税率金額（税抜）'), `table header on page ${i + 1}`);
      assert.ok(page.includes('INV-2025-L60'), `invoice number on page ${i + 1}`);
      assert.equal(
        page.includes('登録番号T1234567890123'),
        i === 0,
        `issuer block on page ${i + 1} only if first`,
      );
      assert.equal(page.includes('山田物産株式会社御中'), i === 0);
      assert.equal(page.includes('請求書（続き）'), i > 0);
      assert.equal(page.includes('消費税合計'), i === n - 1, `totals on page ${i + 1} only if last`);
    });
    // Every line exactly once, in order across the pages.
    const all = pages.join('');
    let at = 0;
    for (let i = 1; i <= 60; i++) {
      const found = all.indexOf(`${i}.`, at);
      assert.ok(found >= at, `line ${i} after line ${i - 1}`);
      at = found;
    }
    const total = `¥${doc.total.toLocaleString('en-US')}`;
    assert.ok(pages[n - 1]!.includes(`ご請求金額（税込）${total}`), `${total} at the end`);
  },
);

test(
  'totals that do not fit under the last line move to a page of their own',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // Find a line count whose last page is full of lines: the totals must then be alone on the next.
    let moved: string[] | undefined;
    for (let lines = 20; lines <= 40 && !moved; lines++) {
      const pages = await pagesOf(longInvoice(lines), `fill-${lines}`);
      const last = pages[pages.length - 1]!;
      if (!last.includes('取引日品目')) moved = pages;
    }
    assert.ok(moved, 'some line count pushes the totals onto a page of their own');
    const last = moved[moved.length - 1]!;
    assert.ok(last.includes('消費税合計') && last.includes('ご請求金額（税込）'));
    assert.ok(last.includes(`${moved.length}/${moved.length}`));
    assert.ok(!moved[moved.length - 2]!.includes('消費税合計'));
  },
);

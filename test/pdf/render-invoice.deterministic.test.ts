import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PdfError, renderSampleInvoice } from '../../src/pdf';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const invoice = {
  tenantName: 'Example Tenant KK',
  invoiceNumber: 'INV-2025-0042',
  customerName: 'Takahashi Shoji',
  amount: 1234567,
  issueDate: '2025-04-30',
};

test(
  'renderSampleInvoice is byte-identical for the same input and differs per invoice',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const a = await renderSampleInvoice(invoice);
    const b = await renderSampleInvoice({ ...invoice });
    assert.ok(a.equals(b));
    const c = await renderSampleInvoice({ ...invoice, invoiceNumber: 'INV-2025-0043' });
    assert.ok(!a.equals(c));
    assert.ok(a.length >= 2000 && a.length <= 50_000, `size ${a.length}`);
    assert.match(a.toString('latin1'), /\/CreationDate \(D:20250430000000Z\)/);
    assert.match(a.toString('latin1'), /\/ID \[ <[0-9a-f]{32}> <[0-9a-f]{32}> \]/);
  },
);

test(
  'renderSampleInvoice produces a valid one-page A4 PDF whose text poppler can read',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sealer-render-'));
    try {
      for (const useObjectStreams of [false, true]) {
        const pdf = await renderSampleInvoice({ ...invoice, useObjectStreams });
        const file = join(dir, `inv-${useObjectStreams}.pdf`);
        await writeFile(file, pdf);
        assert.match(
          execFileSync('qpdf', ['--check', file]).toString(),
          /No syntax or stream encoding errors/,
        );
        const info = execFileSync('pdfinfo', [file]).toString();
        assert.match(info, /Pages:\s+1\n/);
        assert.match(info, /Page size:\s+595\.28 x 841\.89 pts \(A4\)/);
        const text = execFileSync('pdftotext', ['-layout', file, '-']).toString();
        for (const s of [
          'Example Tenant KK',
          'INVOICE',
          'INV-2025-0042',
          'Takahashi Shoji',
          'JPY 1,234,567',
        ]) {
          assert.ok(text.includes(s), `text contains ${s}`);
        }
        assert.equal(/\/Type \/XRef/.test(pdf.toString('latin1')), useObjectStreams);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'renderSampleInvoice rejects Japanese text with a PdfError naming the field',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await assert.rejects(renderSampleInvoice({ ...invoice, customerName: '山田商事' }), (e: unknown) => {
      assert.ok(e instanceof PdfError);
      assert.match(e.message, /customerName/);
      return true;
    });
    await assert.rejects(renderSampleInvoice({ ...invoice, issueDate: '30/04/2025' }), /issueDate/);
  },
);

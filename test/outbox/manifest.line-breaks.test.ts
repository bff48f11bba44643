// A customer name or a reject reason with a line break in it stays one cell of one manifest row: a
// bare line break would split the row, and the next line could pass for a row of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { appendManifestRow, readManifest, MANIFEST_NAME } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test('a cell with LF, CR or CRLF stays in its row', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dir = await tempDir();
  const customers = ['株式会社\nINV-FORGED,x.pdf', 'one\rtwo', 'three\r\nfour', '=cmd|x'];
  for (const [i, customer] of customers.entries()) {
    await appendManifestRow(dir, {
      invoiceNumber: `INV-${i}`,
      file: `INV-${i}.pdf`,
      sealedSha256: 'a'.repeat(64),
      sourceSha256: 'b'.repeat(64),
      signingTime: '2026-11-24T17:00:00.000Z',
      certificateSerial: '0a1b',
      job: 'acme-nightly',
      runId: 'acme-nightly-20261125-020000-000',
      customer,
    });
  }
  const rows = await readManifest(path.join(dir, MANIFEST_NAME));
  assert.deepEqual(
    rows.map((r) => [r.invoiceNumber, r.customer]),
    customers.map((c, i) => [`INV-${i}`, c]),
  );
});

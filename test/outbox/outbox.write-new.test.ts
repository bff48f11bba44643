import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  appendManifestRow,
  checkExistingSeal,
  readManifest,
  sealedFilePath,
  writeNew,
  OutboxConflictError,
  OutboxError,
} from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'writeNew writes the bytes and never replaces an existing file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'acme', '2026-11-24', 'INV-1.pdf');
    await writeNew(file, Buffer.from('first'));
    assert.equal(await fs.readFile(file, 'utf8'), 'first');
    await assert.rejects(writeNew(file, Buffer.from('second')), OutboxConflictError);
    assert.equal(await fs.readFile(file, 'utf8'), 'first');
    assert.deepEqual(await fs.readdir(path.dirname(file)), ['INV-1.pdf'], 'no temp file left behind');
  },
);

test(
  'checkExistingSeal tells a seal of the same source from a different document',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const source = Buffer.from('%PDF-1.7 source bytes');
    const digest = crypto.createHash('sha256').update(source).digest('hex');
    const file = path.join(dir, 'x.pdf');
    assert.equal(await checkExistingSeal(file, digest, source.length), 'absent');
    await fs.writeFile(file, Buffer.concat([source, Buffer.from('\nincremental update')]));
    assert.equal(await checkExistingSeal(file, digest, source.length), 'same-source');
    await fs.writeFile(file, Buffer.from('%PDF-1.7 other bytes!! and more'));
    assert.equal(await checkExistingSeal(file, digest, source.length), 'different');
  },
);

test('sealedFilePath refuses names that would leave the tenant folder', { timeout: TEST_TIMEOUT_MS }, () => {
  assert.equal(sealedFilePath('/out', 'acme', '2026-11-24', 'INV-1'), '/out/acme/2026-11-24/INV-1.pdf');
  for (const bad of ['../x', '..', 'a/b', '', '.hidden']) {
    assert.throws(() => sealedFilePath('/out', 'acme', '2026-11-24', bad), OutboxError);
    assert.throws(() => sealedFilePath('/out', bad, '2026-11-24', 'INV-1'), OutboxError);
  }
});

test(
  'the manifest has a BOM and header once, and concurrent appends stay whole',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const rows = Array.from({ length: 50 }, (_, i) => ({
      invoiceNumber: `INV-${i}`,
      file: `INV-${i}.pdf`,
      sealedSha256: 'a'.repeat(64),
      sourceSha256: 'b'.repeat(64),
      signingTime: '2026-11-24T17:00:00.000Z',
      certificateSerial: '0a1b',
      job: 'acme-nightly',
      runId: 'acme-nightly-20261125-020000-000',
    }));
    await Promise.all(rows.map((r) => appendManifestRow(dir, r)));
    const text = await fs.readFile(path.join(dir, 'manifest.csv'), 'utf8');
    assert.ok(text.startsWith('\uFEFFinvoiceNumber,'));
    assert.equal(text.match(/invoiceNumber,/g)?.length, 1);
    const read = await readManifest(path.join(dir, 'manifest.csv'));
    assert.equal(read.length, 50);
    assert.deepEqual(new Set(read.map((r) => r.invoiceNumber)), new Set(rows.map((r) => r.invoiceNumber)));
  },
);

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { findSealed, OutboxError, recordSealed } from '../../src/outbox';
import { createRecord, FileExistsError, readRecord } from '../../src/outbox/atomic-write';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

test(
  'a sealed-index entry is one link naming the file and the run; the first record is kept',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const file = path.join(root, 'acme', '2026-12-01', 'INV-1.pdf');
    assert.equal(await findSealed(root, 'acme', 'INV-1', sha('a')), undefined);
    await recordSealed(root, 'acme', 'INV-1', sha('a'), file, 'nightly-20261201-010000-000');
    const entry = path.join(root, 'acme', '.sealed', `INV-1.${sha('a')}`);
    assert.ok((await fs.lstat(entry)).isSymbolicLink());
    assert.equal(await fs.readlink(entry), '2026-12-01/INV-1.pdf nightly-20261201-010000-000');
    assert.deepEqual(await findSealed(root, 'acme', 'INV-1', sha('a')), {
      file,
      runId: 'nightly-20261201-010000-000',
    });
    // A second delivery of the same source (a retry, another process) keeps the first record.
    await recordSealed(root, 'acme', 'INV-1', sha('a'), path.join(root, 'acme', 'x', 'INV-1.pdf'), 'other');
    assert.equal((await findSealed(root, 'acme', 'INV-1', sha('a')))?.runId, 'nightly-20261201-010000-000');
    // Another source of the same invoice number is another entry; an entry without a run has none.
    await recordSealed(root, 'acme', 'INV-1', sha('b'), file);
    assert.deepEqual(await findSealed(root, 'acme', 'INV-1', sha('b')), { file, runId: undefined });
    assert.deepEqual(
      (await fs.readdir(path.dirname(entry))).sort(),
      [`INV-1.${sha('a')}`, `INV-1.${sha('b')}`].sort(),
    );
  },
);

test(
  'entries written as files (before links, or where there are none) are read the same way',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const dir = path.join(root, 'acme', '.sealed');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(
      path.join(dir, `INV-2.${sha('a')}`),
      '2026-11-30/INV-2.pdf\nnightly-20261130-010000-000\n',
    );
    await fs.writeFile(path.join(dir, `INV-3.${sha('a')}`), '2026-11-30/INV-3.pdf\n\n');
    assert.deepEqual(await findSealed(root, 'acme', 'INV-2', sha('a')), {
      file: path.join(root, 'acme', '2026-11-30', 'INV-2.pdf'),
      runId: 'nightly-20261130-010000-000',
    });
    assert.deepEqual(await findSealed(root, 'acme', 'INV-3', sha('a')), {
      file: path.join(root, 'acme', '2026-11-30', 'INV-3.pdf'),
      runId: undefined,
    });
    // An existing file entry is not replaced by a link either.
    await recordSealed(root, 'acme', 'INV-2', sha('a'), path.join(root, 'acme', 'y', 'INV-2.pdf'), 'r2');
    assert.equal((await findSealed(root, 'acme', 'INV-2', sha('a')))?.runId, 'nightly-20261130-010000-000');
    // An entry that records nothing (a power cut on a file system that lost it) is absent, and the
    // next record replaces it.
    await fs.writeFile(path.join(dir, `INV-4.${sha('a')}`), '');
    assert.equal(await findSealed(root, 'acme', 'INV-4', sha('a')), undefined);
    await recordSealed(root, 'acme', 'INV-4', sha('a'), path.join(root, 'acme', 'z', 'INV-4.pdf'), 'r4');
    assert.deepEqual(await findSealed(root, 'acme', 'INV-4', sha('a')), {
      file: path.join(root, 'acme', 'z', 'INV-4.pdf'),
      runId: 'r4',
    });
  },
);

test(
  'createRecord refuses what a link target cannot hold and never replaces a record',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'deep', 'er', 'rec');
    await createRecord(file, 'one two');
    assert.equal(await readRecord(file), 'one two');
    await assert.rejects(createRecord(file, 'three'), FileExistsError);
    assert.equal(await readRecord(file), 'one two');
    await assert.rejects(createRecord(path.join(dir, 'nl'), 'a\nb'), /one line of printable ASCII/);
    await assert.rejects(createRecord(path.join(dir, 'empty'), ''), /one line of printable ASCII/);
    assert.equal(await readRecord(path.join(dir, 'nl')), undefined);
    await assert.rejects(
      recordSealed(dir, 'acme', 'INV-1', sha('a'), path.join(dir, 'acme', 'a b', 'INV-1.pdf')),
      OutboxError,
    );
  },
);

test('a removed index folder is made again by the next record', { timeout: TEST_TIMEOUT_MS }, async () => {
  const root = await tempDir();
  const file = path.join(root, 'acme', '2026-12-01', 'INV-1.pdf');
  await recordSealed(root, 'acme', 'INV-1', sha('a'), file, 'r1');
  await fs.rm(path.join(root, 'acme', '.sealed'), { recursive: true });
  await recordSealed(root, 'acme', 'INV-1', sha('a'), file, 'r2');
  assert.equal((await findSealed(root, 'acme', 'INV-1', sha('a')))?.runId, 'r2');
});

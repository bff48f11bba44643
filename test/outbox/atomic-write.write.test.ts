// The one atomic-write module: whole files or nothing, never an overwrite where one is refused, modes
// kept for secrets, no temp file left behind, and errors that name the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  appendFileDurably,
  AtomicWriteError,
  FileExistsError,
  sweepTempFiles,
  tempPathFor,
  writeFileExclusive,
  writeFileReplacing,
  writeFileReplacingSync,
} from '../../src/outbox/atomic-write';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const modeOf = async (file: string) => (await fs.stat(file)).mode & 0o777;

test(
  'writeFileReplacing replaces whole, makes folders, keeps a secret 0600',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'a', 'b', 'state.json');
    await writeFileReplacing(file, 'first');
    await writeFileReplacing(file, Buffer.from('second'));
    assert.equal(await fs.readFile(file, 'utf8'), 'second');
    assert.deepEqual(await fs.readdir(path.dirname(file)), ['state.json'], 'no temp file left behind');

    const secret = path.join(dir, 'private', 'pin');
    await writeFileReplacing(secret, '1234\n', { mode: 0o600, mkdir: 0o700 });
    assert.equal(await modeOf(secret), 0o600);
    assert.equal(await modeOf(path.dirname(secret)), 0o700);
    // A file that was 0644 before is 0600 after: the new content comes in a new file.
    const loose = path.join(dir, 'loose');
    await fs.writeFile(loose, 'x', { mode: 0o644 });
    await writeFileReplacing(loose, 'y', { mode: 0o600 });
    assert.equal(await modeOf(loose), 0o600);

    writeFileReplacingSync(path.join(dir, 'phone', 'otp.txt'), '123456\n', { mode: 0o600, mkdir: 0o700 });
    assert.equal(await fs.readFile(path.join(dir, 'phone', 'otp.txt'), 'utf8'), '123456\n');
    assert.equal(await modeOf(path.join(dir, 'phone', 'otp.txt')), 0o600);
  },
);

test(
  'a write that fails leaves the old file and no temp file, and names the file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    // A folder where the file should go: rename() refuses to put a file over it.
    const target = path.join(dir, 'report.csv');
    await fs.mkdir(path.join(target, 'inside'), { recursive: true });
    await assert.rejects(writeFileReplacing(target, 'x'), (err: unknown) => {
      assert.ok(err instanceof AtomicWriteError);
      assert.equal(err.file, target);
      assert.ok(err.message.includes(target), err.message);
      assert.ok(err.code === 'EISDIR' || err.code === 'ENOTEMPTY' || err.code === 'EEXIST', String(err.code));
      return true;
    });
    assert.deepEqual(await fs.readdir(dir), ['report.csv']);
    assert.throws(() => writeFileReplacingSync(target, 'x'), AtomicWriteError);
    assert.deepEqual(await fs.readdir(dir), ['report.csv']);
  },
);

test(
  'writeFileExclusive never overwrites; one of many racing writers wins',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'sealed', 'INV-1.pdf');
    await writeFileExclusive(file, 'first');
    await assert.rejects(writeFileExclusive(file, 'second'), FileExistsError);
    assert.equal(await fs.readFile(file, 'utf8'), 'first');

    const raced = path.join(dir, 'key.pem');
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => writeFileExclusive(raced, `writer ${i}`, { mode: 0o600 })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof FileExistsError);
    assert.match(await fs.readFile(raced, 'utf8'), /^writer \d$/);
    assert.equal(await modeOf(raced), 0o600);
    assert.deepEqual((await fs.readdir(dir)).sort(), ['key.pem', 'sealed'], 'no temp file left behind');
  },
);

test(
  'appendFileDurably appends whole records and says when it made the file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const log = path.join(dir, '2026-12.jsonl');
    assert.deepEqual(await appendFileDurably(log, '{"seq":1}\n'), { created: true });
    const lines = Array.from({ length: 40 }, (_, i) => `{"seq":${i + 2},"pad":"${'x'.repeat(500)}"}\n`);
    const created = await Promise.all(lines.map((l) => appendFileDurably(log, l)));
    assert.ok(created.every((c) => !c.created));
    const read = (await fs.readFile(log, 'utf8')).split('\n').slice(0, -1);
    assert.equal(read.length, 41);
    assert.deepEqual(new Set(read), new Set(['{"seq":1}', ...lines.map((l) => l.slice(0, -1))]));
    await assert.rejects(appendFileDurably(path.join(dir, 'missing', 'x.jsonl'), 'x'), AtomicWriteError);
  },
);

test(
  'sweepTempFiles removes a dead writer’s temp file and keeps live ones and real files',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const mine = tempPathFor(path.join(dir, 'INV-1.pdf'));
    fsSync.writeFileSync(mine, 'live writer');
    // The same name pattern with the pid of a process that has exited.
    const dead = mine.replace(`~${process.pid}.`, '~999999999.');
    fsSync.writeFileSync(dead, 'left by a crash');
    fsSync.writeFileSync(path.join(dir, 'INV-2.pdf'), 'sealed');
    assert.equal(await sweepTempFiles(dir), 1);
    assert.deepEqual((await fs.readdir(dir)).sort(), [path.basename(mine), 'INV-2.pdf'].sort());
    assert.equal(await sweepTempFiles(path.join(dir, 'absent')), 0);
  },
);

test(
  'a folder removed after a write into it is made again for the next (folders are remembered)',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const folder = path.join(dir, 'outbox', 'acme', '2026-12-02');
    await writeFileExclusive(path.join(folder, 'A.pdf'), 'a');
    await fs.rm(path.join(dir, 'outbox'), { recursive: true });
    await writeFileExclusive(path.join(folder, 'B.pdf'), [Buffer.from('b1'), Buffer.from('b2')]);
    assert.equal(await fs.readFile(path.join(folder, 'B.pdf'), 'utf8'), 'b1b2');
    await writeFileReplacing(path.join(folder, 'state.json'), '{}');
    await fs.rm(folder, { recursive: true });
    await writeFileReplacing(path.join(folder, 'state.json'), '{"again":true}');
    assert.equal(await fs.readFile(path.join(folder, 'state.json'), 'utf8'), '{"again":true}');
    assert.deepEqual((await fs.readdir(folder)).sort(), ['state.json'], 'no temp file left behind');
  },
);

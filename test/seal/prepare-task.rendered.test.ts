// A rendered invoice's record, read from its spool and rendered in a prepare thread: the same bytes
// every time (the digest that deduplicates jobs and the re-render a crash repair compares with), the
// sealed input equal to them, and a spool or logo that changed since the invoice was enqueued refused
// as changed (not sealed), naming what changed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import {
  encodeInvoiceRecord,
  PrepareError,
  PreparePool,
  SourceChangedError,
  type InvoiceRecord,
  type PrepareTask,
} from '../../src/seal';
import { renderQualifiedInvoice } from '../../src/pdf';
import { createTestPki, type TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { longInvoice, mixedRateInvoice, TEMPLATE } from '../pdf/qualified-invoice-fixture';

const T = { timeout: TEST_TIMEOUT_MS };
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let pki: TestPki;
let pool: PreparePool;
let dir: string;
let logoPath: string;
let logo: Buffer;

function logoPng(colour: number[]): Buffer {
  const png = new PNG({ width: 40, height: 20 });
  for (let i = 0; i < png.data.length; i += 4) png.data.set([...colour, 255], i);
  return PNG.sync.write(png);
}

before(async () => {
  pki = await createTestPki();
  pool = new PreparePool({ threads: 2 });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealer-prepare-rendered-'));
  logoPath = path.join(dir, 'logo.png');
  logo = logoPng([31, 58, 95]);
  await fs.writeFile(logoPath, logo);
});
after(async () => {
  await pool.close();
  await pki.cleanup();
  await fs.rm(dir, { recursive: true, force: true });
});

/** A spool of two records (so the second sits at an offset), and a task for each. */
/** The task that renders the record `line` found at `offset` of the spool `file`. */
function taskAt(file: string, line: Buffer, offset: number, logo?: string): PrepareTask {
  return {
    sourcePath: file,
    sourceSha256: sha256(line),
    render: { offset, length: line.length, ...(logo !== undefined && { logoPath: logo }) },
    signingTime: '2026-12-01T17:00:00.000Z',
    chain: pki.ecdsa.chainDer,
    reason: 'Invoice',
    location: 'Tokyo',
    name: 'Sakura',
    signatureBytes: 8192,
  };
}

async function spoolOf(
  name: string,
  records: InvoiceRecord[],
): Promise<{ file: string; tasks: PrepareTask[] }> {
  const file = path.join(dir, name);
  const lines = records.map(encodeInvoiceRecord);
  await fs.writeFile(file, Buffer.concat(lines));
  let offset = 0;
  const tasks = lines.map((line) => {
    const t = taskAt(file, line, offset, logoPath);
    offset += line.length;
    return t;
  });
  return { file, tasks };
}

const withLogo: InvoiceRecord = {
  v: 1,
  document: mixedRateInvoice(),
  template: {
    ...TEMPLATE,
    logoSha256: createHash('sha256')
      .update(logoPng([31, 58, 95]))
      .digest('hex'),
  },
};
const plain: InvoiceRecord = { v: 1, document: longInvoice(45), template: { ...TEMPLATE } };

test(
  'a record renders to the same bytes in any thread, as the renderer gives them; the seal follows them',
  T,
  async () => {
    const { tasks } = await spoolOf('same.jsonl', [plain, withLogo]);
    const [first, second] = tasks as [PrepareTask, PrepareTask];
    const direct = await renderQualifiedInvoice(withLogo.document, { ...TEMPLATE, logo });
    // Several at once: both threads render, each with its own font cache.
    const renders = await Promise.all([1, 2, 3, 4].map(() => pool.render(second)));
    for (const r of renders) assert.equal(sha256(r), sha256(direct));
    const long = await pool.render(first);
    assert.equal(sha256(long), sha256(await renderQualifiedInvoice(plain.document, TEMPLATE)));
    assert.notEqual(sha256(long), sha256(direct));

    const { source, prepared } = await pool.run(second);
    assert.equal(sha256(source), sha256(direct), 'the sealed input is the rendered invoice');
    assert.ok(prepared.update.length > 0);
  },
);

test(
  'a spool changed since the invoice was enqueued is refused as changed, naming the spool',
  T,
  async () => {
    const { file, tasks } = await spoolOf('tampered.jsonl', [plain, withLogo]);
    const bytes = await fs.readFile(file);
    // One digit of the second record's first quantity, same length: only the digest can tell.
    const at = bytes.indexOf('"quantity":', tasks[1]!.render!.offset) + '"quantity":'.length;
    bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31;
    await fs.writeFile(file, bytes);
    await assert.doesNotReject(pool.render(tasks[0]!), 'the untouched record still renders');
    for (const attempt of [() => pool.render(tasks[1]!), () => pool.run(tasks[1]!)]) {
      await assert.rejects(attempt(), (err: unknown) => {
        assert.ok(err instanceof SourceChangedError, String(err));
        assert.match(
          err.message,
          /the invoice record at \d+ of .*tampered\.jsonl changed since it was enqueued/,
        );
        return true;
      });
    }
  },
);

test('a spool cut short is refused as changed, saying how short', T, async () => {
  const { file, tasks } = await spoolOf('short.jsonl', [plain, withLogo]);
  await fs.truncate(file, tasks[1]!.render!.offset + 10);
  await assert.rejects(pool.render(tasks[1]!), (err: unknown) => {
    assert.ok(err instanceof SourceChangedError, String(err));
    assert.match(err.message, /the invoice spool is \d+ bytes, too short for the record at \d+/);
    return true;
  });
});

test(
  'a logo changed since the invoice was enqueued is refused as changed; a template without one now is unsealable',
  T,
  async () => {
    const changedLogo = path.join(dir, 'other-logo.png');
    await fs.writeFile(changedLogo, logoPng([200, 10, 10]));
    const { tasks } = await spoolOf('logo.jsonl', [withLogo]);
    const task = tasks[0]!;
    await assert.rejects(
      pool.render({ ...task, render: { ...task.render!, logoPath: changedLogo } }),
      (err: unknown) => {
        assert.ok(err instanceof SourceChangedError, String(err));
        assert.match(err.message, /invoice logo .*other-logo\.png changed since the invoice was enqueued/);
        return true;
      },
    );
    const { logoPath: _dropped, ...noLogo } = task.render!;
    await assert.rejects(pool.render({ ...task, render: noLogo }), (err: unknown) => {
      assert.ok(err instanceof PrepareError && !(err instanceof SourceChangedError), String(err));
      assert.equal(err.kind, 'unsealable');
      assert.match(err.message, /enqueued with a logo; the job's template has none now/);
      return true;
    });
    await assert.rejects(
      pool.render({ ...task, render: { ...task.render!, logoPath: path.join(dir, 'missing.png') } }),
      (err: unknown) =>
        err instanceof PrepareError && /invoice logo .*missing\.png cannot be read/.test(err.message),
    );
  },
);

test(
  'a record that is not one (bad JSON, another version) is unsealable, naming the spool and offset',
  T,
  async () => {
    const file = path.join(dir, 'garbage.jsonl');
    const line = Buffer.from('{"v":2,"document":{},"template":{}}\n');
    await fs.writeFile(file, line);
    await assert.rejects(pool.render(taskAt(file, line, 0)), (err: unknown) => {
      assert.ok(err instanceof PrepareError, String(err));
      assert.equal(err.kind, 'unsealable');
      assert.match(err.message, /garbage\.jsonl at 0/);
      return true;
    });
  },
);

test(
  'a logo ops replaced after a thread read it renders the new one for records that name it',
  T,
  async () => {
    const one = new PreparePool({ threads: 1 });
    try {
      const file = path.join(dir, 'replaced-logo.png');
      const first = logoPng([10, 120, 10]);
      const second = logoPng([120, 10, 120]);
      await fs.writeFile(file, first);
      const record = (bytes: Buffer): InvoiceRecord => ({
        ...withLogo,
        template: { ...TEMPLATE, logoSha256: createHash('sha256').update(bytes).digest('hex') },
      });
      const { tasks } = await spoolOf('replaced.jsonl', [record(first), record(second)]);
      const at = (t: PrepareTask) => ({ ...t, render: { ...t.render!, logoPath: file } });
      await one.render(at(tasks[0]!));
      await fs.writeFile(file, second);
      const rendered = await one.render(at(tasks[1]!));
      const expected = await renderQualifiedInvoice(withLogo.document, { ...TEMPLATE, logo: second });
      assert.equal(sha256(rendered), sha256(expected));
      // The record made with the old logo is now refused as changed, not drawn with the new one.
      await assert.rejects(one.render(at(tasks[0]!)), SourceChangedError);
    } finally {
      await one.close();
    }
  },
);

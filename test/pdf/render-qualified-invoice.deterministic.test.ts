// The same invoice renders to the same bytes: twice in one thread, in a worker thread (each thread
// loads and caches the fonts itself), and whatever order the input's keys were written in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { PDFDocument } from 'pdf-lib';
import { renderQualifiedInvoice, type InvoiceDocument, type InvoiceTemplate } from '../../src/pdf';
import { nativeDeflate } from '../../src/pdf/native-deflate';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { mixedRateInvoice, TEMPLATE } from './qualified-invoice-fixture';

const RENDERER = join(__dirname, '..', '..', 'src', 'pdf', 'render-qualified-invoice.js');

function renderInWorker(doc: InvoiceDocument, template: InvoiceTemplate): Promise<Uint8Array> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    require(${JSON.stringify(RENDERER)})
      .renderQualifiedInvoice(workerData.doc, workerData.template)
      .then((bytes) => parentPort.postMessage(bytes));`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { doc, template } });
    worker.once('message', (bytes: Uint8Array) => {
      resolve(bytes);
      worker.terminate().catch(reject);
    });
    worker.once('error', reject);
  });
}

/** The last of `docs`, rendered in a fresh worker thread after the ones before it. */
function renderLastInWorker(docs: InvoiceDocument[], template: InvoiceTemplate): Promise<Uint8Array> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { renderQualifiedInvoice } = require(${JSON.stringify(RENDERER)});
    (async () => {
      let bytes;
      for (const doc of workerData.docs) bytes = await renderQualifiedInvoice(doc, workerData.template);
      parentPort.postMessage(bytes);
    })();`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { docs, template } });
    worker.once('message', (bytes: Uint8Array) => {
      resolve(bytes);
      worker.terminate().catch(reject);
    });
    worker.once('error', reject);
  });
}

/** The same object with every key order reversed. */
function reversedKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reversedKeys) as T;
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reversedKeys(v)]),
    ) as T;
  }
  return value;
}

test(
  'the same invoice renders byte-identical, in this thread and in a worker thread; another one differs',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    assert.ok(nativeDeflate, "pdf-lib's streams go through Node's zlib");
    const a = Buffer.from(await renderQualifiedInvoice(mixedRateInvoice(), TEMPLATE));
    const b = Buffer.from(await renderQualifiedInvoice(mixedRateInvoice(), { ...TEMPLATE }));
    assert.ok(a.equals(b), 'twice in one thread');
    const c = Buffer.from(await renderInWorker(mixedRateInvoice(), TEMPLATE));
    assert.ok(a.equals(c), 'in a worker thread');
    const d = Buffer.from(
      await renderQualifiedInvoice(reversedKeys(mixedRateInvoice()), reversedKeys(TEMPLATE)),
    );
    assert.ok(a.equals(d), 'keys in another order');
    const e = Buffer.from(
      await renderQualifiedInvoice({ ...mixedRateInvoice(), invoiceNumber: 'INV-2025-0043' }, TEMPLATE),
    );
    assert.ok(!a.equals(e), 'another invoice');
  },
);

test(
  'dates come from the issue date at 00:00 JST; producer, creator and /ID are fixed by the input',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const pdf = Buffer.from(await renderQualifiedInvoice(mixedRateInvoice(), TEMPLATE)).toString('latin1');
    // 2025-04-30 00:00 in Japan is 2025-04-29 15:00 UTC.
    assert.match(pdf, /\/CreationDate \(D:20250429150000Z\)/);
    assert.match(pdf, /\/ModDate \(D:20250429150000Z\)/);
    const loaded = await PDFDocument.load(Buffer.from(pdf, 'latin1'), { updateMetadata: false });
    assert.equal(loaded.getProducer(), 'nightly-eseal-worker');
    assert.equal(loaded.getCreator(), 'nightly-eseal-worker');
    assert.equal(loaded.getCreationDate()?.toISOString(), '2025-04-29T15:00:00.000Z');
    const ids = /\/ID \[ <([0-9a-f]{32})> <([0-9a-f]{32})> \]/.exec(pdf);
    assert.ok(ids, 'a trailer /ID');
    assert.equal(ids[1], ids[2]);
    const other = Buffer.from(
      await renderQualifiedInvoice(mixedRateInvoice(), { ...TEMPLATE, footer: 'x' }),
    ).toString('latin1');
    assert.ok(!other.includes(ids[1]!), 'the /ID follows the template too');
    // Subset tags are six capitals derived from the characters, never a random or numeric suffix.
    const names = [...pdf.matchAll(/\/BaseFont \/([A-Za-z+-]+)/g)].map((m) => m[1]);
    assert.ok(names.length >= 2);
    for (const name of names) assert.match(name!, /^[A-Z]{6}\+NotoSansJP-(Regular|Bold)$/);
  },
);

test(
  'what a thread rendered before does not change an invoice: characters sharing a glyph (U+2011 and -, no-break space, ⼭ and 山)',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const base = mixedRateInvoice();
    // The same glyphs as the invoice's -, space, ・ and 山田, reached through other characters first.
    const other: InvoiceDocument = {
      ...base,
      invoiceNumber: 'INV\u20112025\u20110099',
      recipientName: '\u2f2d\u2f65物産\u00a0株式会社',
      lines: base.lines.map((l) => ({ ...l, description: `${l.description}\u2027\u00ad\u00a0` })),
    };
    const fresh = Buffer.from(await renderLastInWorker([base], TEMPLATE));
    const after = Buffer.from(await renderLastInWorker([other, base], TEMPLATE));
    assert.ok(fresh.equals(after), `after another invoice: ${after.length} bytes, fresh ${fresh.length}`);
  },
);

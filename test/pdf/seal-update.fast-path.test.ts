// The fast, update-only prepare path: which inputs take it (the whole corpus of xref flavours and
// writers), that its update appended to the input passes qpdf --check and, once a real CMS is
// embedded, pdfsig's verification; that it writes what the pdf-lib path writes; which inputs fall
// back to pdf-lib and why; and that hostile cross-reference data is a PdfError naming the problem.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CmsTemplate, digestToSign } from '../../src/pades';
import {
  embedCms,
  embedCmsInUpdate,
  PdfError,
  PdfLimitError,
  preparePdf,
  prepareSealUpdate,
  renderSampleInvoice,
  type PreparedSealUpdate,
} from '../../src/pdf';
import { PdfStructureError } from '../../src/pdf/lazy-parser';
import { preparePdfWithPdfLib } from '../../src/pdf/prepare';
import { prepareSealUpdateFast } from '../../src/pdf/seal-update';
import { buildPdf, objectStreamBomb, ONE_PAGE, xrefStreamBomb } from '../helpers/bomb-pdf';
import { renderMultiPageInvoice } from '../helpers/multi-page-invoice';
import { createTestPki, type TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { certifiedPdf } from './certified-fixture';

const signingTime = new Date('2025-02-01T01:02:03Z');
const invoice = {
  tenantName: 'Example Tenant KK',
  invoiceNumber: 'INV-2025-0001',
  customerName: 'Yamada Shoji KK',
  amount: 110000,
  issueDate: '2025-01-31',
};
let pki: TestPki;
let corpus: Record<string, Buffer>;

function tool(cmd: string, args: string[], input: Buffer, name: string): Buffer {
  const from = join(pki.dir, `${name}-in.pdf`);
  const to = join(pki.dir, `${name}-out.pdf`);
  writeFileSync(from, input);
  execFileSync(cmd, [...args.map((a) => a.replace('{in}', from).replace('{out}', to))]);
  return readFileSync(to);
}

const qpdf = (args: string[], input: Buffer, name: string) =>
  tool('qpdf', [...args, '{in}', '{out}'], input, name);

/**
 * A hybrid-reference file (ISO 32000-1 §7.5.8.4): an update whose classic table lists only an object
 * stream and an xref stream, while its trailer's /XRefStm says the first page now lives in that
 * object stream. The copy carries /HybridMarker, so a reader that ignores /XRefStm is caught out.
 */
function hybrid(classic: Buffer): Buffer {
  const text = classic.toString('latin1');
  const pageMatch = /(\d+) 0 obj\n(<<\n\/Type \/Page\n[\s\S]*?)\nendobj/.exec(text)!;
  const pageNum = Number(pageMatch[1]);
  const prevXref = Number(/startxref\n(\d+)\n%%EOF\s*$/.exec(text)![1]);
  const size = Number(/\/Size (\d+)/.exec(text.slice(text.lastIndexOf('trailer')))![1]);
  const [root, info, id] = ['Root', 'Info', 'ID'].map(
    (k) => new RegExp(`/${k} ([^\\n]+)`).exec(text.slice(text.lastIndexOf('trailer')))![1]!,
  );
  const page = pageMatch[2]!.replace('/Type /Page\n', '/Type /Page\n/HybridMarker true\n');
  const objStm = size;
  const xrefStm = size + 1;
  const head = `${pageNum} 0 `;
  const parts: string[] = ['\n'];
  let at = classic.length + 1;
  const objStmAt = at;
  const objStmBody = `${head}${page}`;
  parts.push(
    `${objStm} 0 obj\n<< /Type /ObjStm /N 1 /First ${head.length} /Length ${objStmBody.length} >>\nstream\n${objStmBody}\nendstream\nendobj\n`,
  );
  at += parts[1]!.length;
  const xrefStmAt = at;
  const row = (type: number, f2: number, f3: number) =>
    Buffer.from([type, (f2 >>> 24) & 255, (f2 >>> 16) & 255, (f2 >>> 8) & 255, f2 & 255, f3 >> 8, f3 & 255]);
  const rows = Buffer.concat([row(2, objStm, 0), row(1, objStmAt, 0), row(1, xrefStmAt, 0)]);
  const xrefStmHead = `${xrefStm} 0 obj\n<< /Type /XRef /Size ${size + 2} /W [1 4 2] /Index [${pageNum} 1 ${objStm} 2] /Length ${rows.length} >>\nstream\n`;
  const xrefStmTail = '\nendstream\nendobj\n';
  at += xrefStmHead.length + rows.length + xrefStmTail.length;
  const entry = (offset: number) => `${String(offset).padStart(10, '0')} 00000 n \n`;
  const table =
    `xref\n0 1\n0000000000 65535 f \n${objStm} 2\n${entry(objStmAt)}${entry(xrefStmAt)}` +
    `trailer\n<< /Size ${size + 2} /Root ${root} /Info ${info} /ID ${id} /Prev ${prevXref} /XRefStm ${xrefStmAt} >>\n` +
    `startxref\n${at}\n%%EOF\n`;
  return Buffer.concat([
    classic,
    Buffer.from(parts.join(''), 'latin1'),
    Buffer.from(xrefStmHead, 'latin1'),
    rows,
    Buffer.from(xrefStmTail + table, 'latin1'),
  ]);
}

before(async () => {
  pki = await createTestPki();
  const classic = await renderSampleInvoice(invoice);
  const multiPage = await renderMultiPageInvoice();
  const once = await preparePdf(classic, { signingTime });
  corpus = {
    classic,
    'pdf-lib object streams': await renderSampleInvoice({ ...invoice, useObjectStreams: true }),
    'qpdf object streams': qpdf(['--object-streams=generate'], classic, 'qpdf'),
    'qpdf --linearize': qpdf(['--linearize'], classic, 'lin'),
    'qpdf --linearize object streams': qpdf(
      ['--linearize', '--object-streams=generate'],
      multiPage,
      'linobj',
    ),
    ghostscript: tool(
      'gs',
      ['-q', '-dNOPAUSE', '-dBATCH', '-dSAFER', '-sDEVICE=pdfwrite', '-sOutputFile={out}', '{in}'],
      classic,
      'gs',
    ),
    hybrid: hybrid(classic),
    'earlier incremental update (a prepared seal)': once.bytes,
    'no final newline': classic.subarray(0, classic.lastIndexOf('%%EOF') + 5),
    '14-page invoice': multiPage,
    '14-page invoice, object streams': await renderMultiPageInvoice({ useObjectStreams: true }),
  };
});
after(() => pki.cleanup());

const fileFor = (name: string) => join(pki.dir, `${name.replace(/\W+/g, '-')}.pdf`);

/** qpdf --check's report and the page count it reads. */
function check(pdf: Buffer, name: string): { report: string; pages: string } {
  const file = fileFor(name);
  writeFileSync(file, pdf);
  const report = execFileSync('qpdf', ['--check', file]).toString();
  return { report, pages: execFileSync('qpdf', ['--show-npages', file]).toString().trim() };
}

function seal(input: Buffer, prepared: PreparedSealUpdate): Buffer {
  const template = CmsTemplate.fromCertificates(pki.ecdsa.chainDer);
  const attrs = template.signedAttributes(prepared.contentDigest);
  const cms = template.assemble(attrs, pki.ecdsa.signDigest(digestToSign(attrs), { ecdsaFormat: 'raw' }));
  return Buffer.concat([input, embedCmsInUpdate(prepared, cms)]);
}

function pdfsig(pdf: Buffer, name: string): string {
  const file = fileFor(`${name} sealed`);
  writeFileSync(file, pdf);
  return execFileSync('pdfsig', ['-nssdir', pki.nssDb(), file]).toString();
}

test(
  'every input of the corpus takes the fast path; input || update passes qpdf --check and, sealed, pdfsig',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    for (const [name, input] of Object.entries(corpus)) {
      const before = check(input, `${name} input`);
      assert.match(before.report, /No syntax or stream encoding errors/, `${name}: input is sound`);
      const p = await prepareSealUpdate(input, {
        signingTime,
        reason: 'Invoice e-seal',
        name: 'Example Tenant KK',
      });
      assert.equal(p.path, 'fast', `${name}: ${p.fallbackReason}`);
      assert.equal(p.inputLength, input.length);
      const whole = Buffer.concat([input, p.update]);
      const [s1, l1, s2, l2] = p.byteRange;
      assert.equal(s1, 0);
      assert.equal(s2 + l2, whole.length, `${name}: second range runs to the end`);
      assert.equal(s2 - l1, 2 + p.signatureBytes * 2);
      assert.match(whole.toString('latin1', l1 - 10, l1 + 1), /\/Contents <$/, name);
      const written = /\/ByteRange \[0 (\d+) (\d+) (\d+) *\]/.exec(p.update.toString('latin1'));
      assert.deepEqual(written?.slice(1).map(Number), [l1, s2, l2], `${name}: ByteRange in the file`);
      const digest = createHash('sha256').update(whole.subarray(0, l1)).update(whole.subarray(s2)).digest();
      assert.ok(p.contentDigest.equals(digest), `${name}: digest over the ranges`);
      assert.equal(p.update.toString('latin1').match(/%%EOF/g)?.length, 1, `${name}: one update`);

      // preparePdf is input || the same update.
      const full = await preparePdf(input, {
        signingTime,
        reason: 'Invoice e-seal',
        name: 'Example Tenant KK',
      });
      assert.ok(full.bytes.equals(whole), `${name}: preparePdf = input || update`);

      const afterCheck = check(whole, name);
      assert.match(afterCheck.report, /No syntax or stream encoding errors found/, name);
      assert.doesNotMatch(afterCheck.report, /WARNING/, name);
      assert.equal(afterCheck.pages, before.pages, `${name}: same pages`);

      const report = pdfsig(seal(input, p), name);
      const expected = name.startsWith('earlier incremental') ? 1 : 0;
      assert.equal(
        report.match(/Signature Validation: Signature is Valid\./g)?.length,
        1,
        `${name}: ${report}`,
      );
      assert.match(report, new RegExp(`Signature #${expected + 1}:[\\s\\S]*Total document signed`), name);
      assert.equal(p.fieldName, `Signature${expected + 1}`, name);
    }
  },
);

test(
  'the hybrid file is read through /XRefStm: the page comes from the object stream',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const p = prepareSealUpdateFast(corpus.hybrid!, { signingTime });
    assert.match(
      p.update.toString('latin1'),
      /\/Type \/Page\n\/HybridMarker true\n[\s\S]*\/Annots \[ \d+ 0 R \]/,
    );
  },
);

test(
  'the fast path writes what the pdf-lib path writes, in the input’s xref flavour',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const options = {
      signingTime,
      reason: '請求書 (e-seal)',
      name: 'Example Tenant KK',
      location: 'Tokyo',
      contactInfo: 'x',
    };
    const sigDict = (s: string) =>
      /<<\n\/Type \/Sig\n[\s\S]*?\n>>/.exec(s)?.[0].replace(/\/ByteRange \[[^\]]*\]/, '');
    for (const [name, input] of Object.entries(corpus)) {
      const fast = prepareSealUpdateFast(input, options);
      const slow = await preparePdfWithPdfLib(input, options);
      const fastText = fast.update.toString('latin1');
      const slowText = slow.bytes.toString('latin1', input.length);
      assert.equal(fast.fieldName, slow.fieldName, name);
      assert.equal(sigDict(fastText), sigDict(slowText), `${name}: the same signature dictionary`);
      assert.equal(/\nxref\n/.test(fastText), /\nxref\n/.test(slowText), `${name}: same xref flavour`);
      // Both rewrite the same existing objects (the catalog only when /AcroForm is new); objects
      // numbered below the signature dictionary's existed before. pdf-lib packs changed objects into a
      // new object stream for xref-stream inputs, where this cannot be read off the text.
      const existing = (text: string) => {
        const sigNum = Number(
          /\/V (\d+) 0 R/.exec(text)?.[1] ?? /(\d+) 0 obj\n<<\n\/Type \/Sig\n/.exec(text)![1],
        );
        return [...text.matchAll(/(?:^|\n)(\d+) \d+ obj\n/g)]
          .map((m) => Number(m[1]))
          .filter((n) => n < sigNum);
      };
      if (!slowText.includes('/Type /ObjStm')) {
        assert.deepEqual(existing(fastText), existing(slowText), `${name}: same rewritten objects`);
      }
    }
  },
);

test(
  'embedCmsInUpdate writes into the update what embedCms writes into the whole file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const input = corpus.classic!;
    const p = await prepareSealUpdate(input, { signingTime });
    const cms = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), Buffer.alloc(256, 7)]);
    const whole = embedCms({ ...p, bytes: Buffer.concat([input, p.update]) }, cms);
    assert.ok(Buffer.concat([input, embedCmsInUpdate(p, cms)]).equals(whole));
  },
);

test(
  'inputs the fast path leaves to pdf-lib still prepare, and say why',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const input = corpus.classic!;
    const visible = await prepareSealUpdate(input, {
      signingTime,
      appearance: { page: 1, x: 400, y: 60, size: 80, text: 'Example Tenant KK' },
    });
    assert.equal(visible.path, 'pdf-lib');
    assert.match(visible.fallbackReason!, /visible appearance/);

    const certified = await certifiedPdf(input, {
      signer: pki.ecdsa,
      signingTime,
      p: 2,
      emptyFields: [{ name: 'CompanySeal' }],
    });
    const filled = await prepareSealUpdate(certified, { signingTime });
    assert.equal(filled.path, 'pdf-lib');
    assert.match(filled.fallbackReason!, /certified/);
    assert.equal(filled.filledExistingField, true);
    assert.equal(filled.fieldName, 'CompanySeal');
    // The update alone, a buffer of its own.
    assert.equal(filled.update.byteOffset, 0);
    assert.ok(
      (await preparePdf(certified, { signingTime })).bytes.equals(Buffer.concat([certified, filled.update])),
    );
  },
);

test('refusals are the same PdfErrors on the fast path', { timeout: TEST_TIMEOUT_MS }, async () => {
  const input = corpus.classic!;
  const encrypted = qpdf(['--encrypt', 'u', 'o', '256', '--'], input, 'enc');
  const encryptedStreams = qpdf(
    ['--object-streams=generate', '--encrypt', 'u', 'o', '256', '--'],
    input,
    'enc2',
  );
  const cases: [Buffer, RegExp, unknown?][] = [
    [Buffer.alloc(0), /^input PDF is empty \(0 bytes\)$/],
    [Buffer.from('hello, not a pdf'), /not a PDF/],
    [input.subarray(0, input.length - 200), /%%EOF|startxref/],
    [encrypted, /^input PDF is encrypted: encrypted PDFs cannot be sealed$/],
    [encryptedStreams, /^input PDF is encrypted: encrypted PDFs cannot be sealed$/],
    [buildPdf(['<< /Type /Catalog /Pages 2 0 R >>', '<< /Type /Pages /Kids [] /Count 0 >>']), /no pages/],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(
      () => prepareSealUpdateFast(bytes, { signingTime }),
      (e: unknown) => {
        assert.ok(e instanceof PdfError && !(e instanceof PdfStructureError), String(e));
        assert.match(e.message, message);
        return true;
      },
    );
    await assert.rejects(
      preparePdf(bytes, { signingTime }),
      (e: unknown) => e instanceof PdfError && message.test(e.message),
    );
  }
  assert.throws(() => prepareSealUpdateFast(input, { signingTime, signatureBytes: 10 }), /signatureBytes/);
  assert.throws(() => prepareSealUpdateFast(input, { signingTime: new Date('nope') }), /signingTime/);
});

/** A classic one-page file with an empty update section appended whose trailer is `trailer(at)`. */
function withSection(base: Buffer, trailer: (at: number) => string): Buffer {
  const at = base.length;
  return Buffer.concat([
    base,
    Buffer.from(
      `xref\n0 1\n0000000000 65535 f \ntrailer\n<< ${trailer(at)} >>\nstartxref\n${at}\n%%EOF\n`,
      'latin1',
    ),
  ]);
}

test(
  'hostile cross-reference data is a PdfError naming the problem',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const base = buildPdf([...ONE_PAGE]);
    const baseXref = Number(/startxref\n(\d+)/.exec(base.toString('latin1'))![1]);
    const selfLoop = withSection(base, (at) => `/Size 4 /Root 1 0 R /Prev ${at}`);
    // Two sections pointing at each other: the original trailer now has a /Prev to the new one.
    const padded = base
      .toString('latin1')
      .replace('/Size 4 /Root 1 0 R', '/Size 4 /Root 1 0 R /Prev 0000000000');
    const twoLoop = withSection(Buffer.from(padded, 'latin1'), () => `/Size 4 /Root 1 0 R /Prev ${baseXref}`);
    twoLoop.write(String(padded.length).padStart(10, '0'), padded.indexOf('/Prev 0000000000') + 6, 'latin1');
    const pastEnd = Buffer.from(
      base.toString('latin1').replace(/startxref\n\d+/, 'startxref\n999999999'),
      'latin1',
    );
    const entryPastEnd = Buffer.from(
      base.toString('latin1').replace(/0000000000 65535 f \n\d{10}/, '0000000000 65535 f \n0099999999'),
      'latin1',
    );
    const hugeCount = Buffer.from(
      base.toString('latin1').replace('xref\n0 4\n', 'xref\n0 99999999\n'),
      'latin1',
    );
    const smallSize = Buffer.from(
      base.toString('latin1').replace('/Size 4 /Root', '/Size 2 /Root'),
      'latin1',
    );
    const pageLoop = buildPdf([
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [2 0 R] /Count 1 >>',
    ]);
    // Structure errors fall back to pdf-lib; a page-tree loop is refused outright (pdf-lib's own page
    // walk overflows the stack on it).
    const cases: [string, Buffer, RegExp, boolean?][] = [
      [
        'a /Prev pointing at itself',
        selfLoop,
        new RegExp(`loop in its /Prev chain: offset ${base.length} is visited twice`),
      ],
      [
        'two sections pointing at each other',
        twoLoop,
        new RegExp(`loop in its /Prev chain: offset ${padded.length} is visited twice`),
      ],
      [
        'startxref past the end',
        pastEnd,
        /has a startxref or \/Prev offset \(999999999\) outside the file \(\d+ bytes\)/,
      ],
      [
        'an xref entry past the end',
        entryPastEnd,
        /has an offset for object 1 \(99999999\) outside the file/,
      ],
      [
        'a subsection count larger than the file',
        hugeCount,
        /xref subsection "0 99999999" .* runs past the end of the file/,
      ],
      [
        'a trailer /Size that new objects would collide under',
        smallSize,
        /trailer \/Size 2 is not past object 2/,
      ],
      [
        'a page tree that contains itself',
        pageLoop,
        /^input PDF has a loop in its page tree at object 2$/,
        true,
      ],
    ];
    for (const [name, bytes, message, refused] of cases) {
      assert.throws(
        () => prepareSealUpdateFast(bytes, { signingTime }),
        (e: unknown) => {
          assert.ok(e instanceof PdfError, `${name}: ${String(e)}`);
          assert.equal(e instanceof PdfStructureError, !refused, name);
          assert.match(e.message, message, name);
          return true;
        },
        name,
      );
      // The whole-file parse of pdf-lib is the second opinion: it prepares or refuses, never hangs.
      const outcome: PreparedSealUpdate | Error = await prepareSealUpdate(bytes, { signingTime }).catch(
        (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
      );
      if (refused) assert.ok(outcome instanceof PdfError && message.test(outcome.message), name);
      else if (outcome instanceof Error)
        assert.ok(outcome instanceof PdfError, `${name}: ${String(outcome)}`);
      else {
        assert.equal(outcome.path, 'pdf-lib', name);
        assert.match(outcome.fallbackReason!, message, name);
      }
    }
  },
);

test(
  'the fast path inflates only what it reads: an untouched bomb costs nothing, a touched one is refused',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const MiB = 1024 * 1024;
    // Object 4 is a 256 MiB bomb no object the seal touches lives in.
    const untouched = await prepareSealUpdate(objectStreamBomb(256), { signingTime, maxInflatedBytes: MiB });
    assert.equal(untouched.path, 'fast');

    // The same bomb as the newest xref stream, the one every lookup goes through.
    const bomb = xrefStreamBomb(16).toString('latin1').replace('/Type /XRef', '/Root 1 0 R /Type /XRef');
    const at = bomb.indexOf('4 0 obj');
    const touched = Buffer.from(bomb.replace(/startxref\n\d+/, `startxref\n${at}`), 'latin1');
    const err = await prepareSealUpdate(touched, { signingTime, maxInflatedBytes: MiB }).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof PdfLimitError, String(err));
    assert.match(err.message, /inflates to more than 1048576 bytes \(\/XRef of \d+ compressed bytes\)/);
  },
);

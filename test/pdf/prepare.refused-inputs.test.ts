import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PdfError, preparePdf, renderSampleInvoice } from '../../src/pdf';
import { toPrepareError } from '../../src/seal/prepare-task';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const signingTime = new Date('2025-02-01T01:02:03Z');
const ENCRYPTED = 'input PDF is encrypted: encrypted PDFs cannot be sealed';
let dir: string;
let plain: string;

// Not helpers/tempDir: its after() hook, registered from inside before(), runs as that hook ends.
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealer-refused-'));
  plain = join(dir, 'plain.pdf');
  writeFileSync(
    plain,
    await renderSampleInvoice({
      tenantName: 'Example Tenant KK',
      invoiceNumber: 'INV-2025-0007',
      customerName: 'Sato Trading',
      amount: 5500,
      issueDate: '2025-03-01',
    }),
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The sample invoice encrypted by qpdf with the given arguments (user password "u" unless given). */
function encrypted(name: string, args: string[]): { pdf: Buffer; encryption: string } {
  const out = join(dir, `${name}.pdf`);
  execFileSync('qpdf', [...args, plain, out]);
  // qpdf itself says what it wrote, so the test does not rest on our own reading of the file.
  const encryption = execFileSync('qpdf', ['--password=o', '--show-encryption', out]).toString();
  return { pdf: readFileSync(out), encryption };
}

async function assertRefused(input: Buffer, expected: RegExp | string, label: string): Promise<PdfError> {
  let caught: unknown;
  await assert.rejects(preparePdf(input, { signingTime }), (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof PdfError, `${label}: a PdfError`);
  if (typeof expected === 'string') assert.equal(caught.message, expected, label);
  else assert.match(caught.message, expected, label);
  return caught;
}

test(
  'an encrypted input is refused in our words, whatever the cipher and xref flavour, never with pdf-lib’s hint',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const variants: [string, string[], RegExp][] = [
      ['aes256', ['--encrypt', 'u', 'o', '256', '--'], /R = 6/],
      ['aes256-object-streams', ['--object-streams=generate', '--encrypt', 'u', 'o', '256', '--'], /R = 6/],
      ['aes256-no-user-password', ['--encrypt', '', 'o', '256', '--'], /R = 6/],
      ['aes128', ['--encrypt', 'u', 'o', '128', '--use-aes=y', '--'], /R = 4/],
      ['rc4-128', ['--allow-weak-crypto', '--encrypt', 'u', 'o', '128', '--use-aes=n', '--'], /R = 3/],
      ['rc4-40', ['--allow-weak-crypto', '--encrypt', 'u', 'o', '40', '--'], /R = 2/],
    ];
    for (const [name, args, revision] of variants) {
      const { pdf, encryption } = encrypted(name, args);
      assert.match(encryption, revision, `${name}: qpdf wrote the intended security handler`);
      const err = await assertRefused(pdf, ENCRYPTED, name);
      assert.doesNotMatch(err.message, /ignoreEncryption|PDFDocument\.load/, name);
      // A PdfError is what the queue treats as unsealable: no retries for this invoice.
      assert.equal(toPrepareError(err, `${name}.pdf`).kind, 'unsealable', name);
    }
  },
);

test(
  'an encrypted input whose startxref points astray is still refused as encrypted',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { pdf } = encrypted('astray', ['--encrypt', 'u', 'o', '256', '--']);
    const at = pdf.lastIndexOf('startxref');
    const broken = Buffer.from(pdf);
    // Same length, offset 0: the trailer check before parsing cannot find the trailer this way.
    const digits = /startxref\s+(\d+)/.exec(broken.toString('latin1', at))![1]!;
    broken.write('0'.repeat(digits.length), broken.indexOf(digits, at, 'latin1'), 'latin1');
    await assertRefused(broken, ENCRYPTED, 'astray');
  },
);

test('an empty input says it is empty', { timeout: TEST_TIMEOUT_MS }, async () => {
  await assertRefused(Buffer.alloc(0), 'input PDF is empty (0 bytes)', '0 bytes');
  // As a plain Uint8Array, the way a worker thread hands it over.
  await assertRefused(new Uint8Array(0) as Buffer, 'input PDF is empty (0 bytes)', 'Uint8Array');
  const blank = Buffer.from(' \r\n\t\f\0\n\n', 'latin1');
  await assertRefused(blank, /^input PDF is empty \(0 bytes besides 8 bytes of whitespace\)$/, 'whitespace');
  // Not the generic "not a PDF": an empty export file is its own, common, operator problem.
  const err = await assertRefused(Buffer.alloc(0), /empty/, 'again');
  assert.doesNotMatch(err.message, /not a PDF|%PDF-/);
});

// `sealer verify` as a user runs it: several --root files, one line per signature with level, timestamps
// and later changes, --json with every field, and exit status 1 when any signature fails or a file
// cannot be read. A valid and a tampered file go through the bin (a separate process, its exit status);
// the other cases run the same command in-process. Files come from test/helpers/ltv-fixture.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { extractSignatures, renderSampleInvoice } from '../../src/pdf';
import {
  appendDocTimestamp,
  appendDss,
  createLtvPki,
  sealWithPki,
  type LtvPki,
} from '../helpers/ltv-fixture';
import { sealerInProcess } from '../helpers/sealer-in-process';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const execFileP = promisify(execFile);

async function sealer(args: string[]) {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
let pki: LtvPki;
const files: Record<'lta' | 'tampered' | 'wrongImprint' | 'notPdf', string> = {
  lta: '',
  tampered: '',
  wrongImprint: '',
  notPdf: '',
};

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sealer-verify-cli-'));
  pki = createLtvPki(dir);
  const input = await renderSampleInvoice({
    tenantName: 'Verify Test Tenant KK',
    invoiceNumber: 'INV-2026-0007',
    customerName: 'Sato Trading KK',
    amount: 12000,
    issueDate: '2026-11-30',
  });
  const bT = await sealWithPki(input, pki, { timestamp: 'valid' });
  const lt = await appendDss(bT, {
    certsDer: [pki.signerCertDer, pki.rootCertDer, pki.tsaCertDer],
    ocspsDer: [pki.ocspForSigner()],
    crlsDer: [pki.crl()],
    signatureCmsDer: [extractSignatures(bT)[0]!.cmsDer],
  });
  const lta = await appendDocTimestamp(lt, pki);
  const tampered = Buffer.from(lta);
  const at = tampered.indexOf('/Title <');
  tampered[at + 10] = tampered[at + 10] === 0x30 ? 0x31 : 0x30;
  const write = async (name: keyof typeof files, bytes: Buffer) => {
    files[name] = path.join(dir, `${name}.pdf`);
    await writeFile(files[name], bytes);
  };
  await write('lta', lta);
  await write('tampered', tampered);
  await write('wrongImprint', await sealWithPki(input, pki, { timestamp: 'wrong-imprint' }));
  await write('notPdf', Buffer.from('not a pdf at all'));
});
after(() => rm(dir, { recursive: true, force: true }));

test(
  'a B-LTA file verifies with several roots given; each line says what was found',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const r = await sealer(['verify', '--root', pki.otherRootPemPath, '--root', pki.rootPemPath, files.lta]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3, r.stdout);
    assert.match(
      lines[0]!,
      /signature 1: VALID \(ETSI\.CAdES\.detached, NOT the whole document, chain trusted, level B-LTA, signer .*CN=Verify Test e-seal/,
    );
    assert.match(lines[0]!, /revocation data present/);
    assert.match(lines[0]!, /later changes: validation data and signatures only/);
    assert.match(lines[0]!, /signature timestamp 20\d\d-\d\d-\d\dT[\d:.]+Z by .*CN=Verify Test TSA/);
    assert.match(lines[0]!, /document timestamp 20\d\d-\d\d-\d\dT[\d:.]+Z by .*CN=Verify Test TSA/);
    assert.match(lines[1]!, /document timestamp 2: VALID \(ETSI\.RFC3161, whole document, chain trusted/);
    assert.match(lines[2]!, /1 file\(s\) checked, all valid/);
  },
);

test(
  'without --root the chains are "not checked", which is not a failure',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const r = await sealerInProcess(['verify', files.lta]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /signature 1: VALID \(.*chain not checked, level B-LTA/);
    assert.match(r.stdout, /all valid/);
  },
);

test('--json gives every field per file, with ISO times', { timeout: TEST_TIMEOUT_MS }, async () => {
  // One PEM file may hold several roots.
  const bundle = path.join(dir, 'bundle.pem');
  await writeFile(
    bundle,
    (await readFile(pki.otherRootPemPath, 'latin1')) + (await readFile(pki.rootPemPath, 'latin1')),
  );
  const r = await sealerInProcess(['verify', '--json', '--root', bundle, files.lta, files.notPdf]);
  assert.equal(r.code, 1, 'the unreadable file fails the run');
  const out = JSON.parse(r.stdout) as {
    file: string;
    chainChecked: boolean;
    error?: string;
    signatures: {
      kind: string;
      valid: boolean;
      level?: string;
      chainTrusted?: boolean;
      signatureTimestamp?: { genTime: string; tsaSubject: string };
      documentTimestamp?: { genTime: string };
      revocation: { serialHex: string; ocsp: boolean; crl: boolean }[];
      laterChanges: string;
    }[];
  }[];
  assert.equal(out.length, 2);
  const [lta, bad] = out;
  assert.equal(lta!.file, files.lta);
  assert.equal(lta!.chainChecked, true);
  assert.deepEqual(
    lta!.signatures.map((s) => [s.kind, s.valid, s.level, s.chainTrusted, s.laterChanges]),
    [
      ['signature', true, 'B-LTA', true, 'validation-data'],
      ['document-timestamp', true, undefined, true, 'none'],
    ],
  );
  const sig = lta!.signatures[0]!;
  assert.ok(!Number.isNaN(Date.parse(sig.signatureTimestamp!.genTime)));
  assert.match(sig.signatureTimestamp!.genTime, /Z$/);
  assert.match(sig.documentTimestamp!.genTime, /Z$/);
  assert.deepEqual(
    sig.revocation.map((c) => [c.serialHex, c.ocsp, c.crl]),
    [['1001', true, true]],
  );
  assert.equal(bad!.file, files.notPdf);
  assert.match(bad!.error ?? '', /no signature/);
});

test(
  'a tampered byte, an untrusted root and a wrong imprint each exit 1',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const tampered = await sealer(['verify', '--root', pki.rootPemPath, files.tampered]);
    assert.equal(tampered.code, 1);
    assert.match(tampered.stdout, /signature 1: INVALID.*message digest does not match/);
    assert.match(tampered.stdout, /1 file\(s\) checked, \d+ problem\(s\)/);

    const untrusted = await sealerInProcess(['verify', '--root', pki.otherRootPemPath, files.lta]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stdout, /signature 1: INVALID \(.*chain NOT trusted/);

    const wrong = await sealerInProcess(['verify', '--root', pki.rootPemPath, files.wrongImprint]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stdout, /signature timestamp: timestamp imprint does not match/);

    const missing = await sealerInProcess(['verify', path.join(dir, 'nope.pdf')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /nope\.pdf: INVALID: ENOENT/);
  },
);

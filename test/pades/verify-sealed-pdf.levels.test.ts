// PAdES levels as verifySealedPdf reports them, on files built here with openssl's TSA, OCSP responder
// and CRL (test/helpers/ltv-fixture.ts): B-T, B-LT, B-LTA, and the faults that must fail a signature
// (tampered byte, untrusted root, wrong imprint, other changes after the seal). pdfsig gives its verdict
// on the same files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readSignerInfoParts, verifySealedPdf } from '../../src/pades';
import { extractSignatures, renderSampleInvoice } from '../../src/pdf';
import {
  appendDocTimestamp,
  appendDss,
  appendOtherChange,
  certifyWithPki,
  createLtvPki,
  sealWithPki,
  type LtvPki,
} from '../helpers/ltv-fixture';
import { pdfsig } from '../helpers/pdfsig';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let dir: string;
let pki: LtvPki;
let input: Buffer;
let nssDir: string;

before(async () => {
  // Not tempDir() (nor nssDbWithRoot, which uses it): an after() registered inside a before hook
  // removes the folder as soon as the hook ends.
  dir = await mkdtemp(path.join(os.tmpdir(), 'sealer-levels-'));
  pki = createLtvPki(dir);
  nssDir = path.join(dir, 'nssdb');
  await mkdir(nssDir);
  execFileSync('certutil', ['-N', '-d', `sql:${nssDir}`, '--empty-password']);
  execFileSync('certutil', [
    '-A',
    '-d',
    `sql:${nssDir}`,
    '-n',
    'root',
    '-t',
    'CT,C,C',
    '-i',
    pki.rootPemPath,
  ]);
  input = await renderSampleInvoice({
    tenantName: 'Verify Test Tenant KK',
    invoiceNumber: 'INV-2026-0042',
    customerName: 'Yamada Shoji KK',
    amount: 55000,
    issueDate: '2026-11-30',
  });
});

after(() => rm(dir, { recursive: true, force: true }));

async function bLt(bT: Buffer): Promise<Buffer> {
  const [sig] = extractSignatures(bT);
  return appendDss(bT, {
    certsDer: [pki.signerCertDer, pki.rootCertDer, pki.tsaCertDer],
    ocspsDer: [pki.ocspForSigner()],
    crlsDer: [pki.crl()],
    signatureCmsDer: [sig!.cmsDer],
  });
}

/** `openssl ts -verify` of a token against the data it should stamp, trusting the test root. */
function opensslTsVerify(token: Buffer, data: Buffer, name: string): boolean {
  const tokenFile = path.join(dir, `${name}.tst`);
  const dataFile = path.join(dir, `${name}.bin`);
  writeFileSync(tokenFile, token);
  writeFileSync(dataFile, data);
  const r = spawnSync('openssl', [
    'ts',
    '-verify',
    '-token_in',
    '-in',
    tokenFile,
    '-data',
    dataFile,
    '-CAfile',
    pki.rootPemPath,
  ]);
  return r.status === 0 && /Verification: OK/.test(r.stdout.toString());
}

async function pdfsigOf(pdf: Buffer, name: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, pdf);
  return pdfsig(file, nssDir);
}

test('a signature timestamp from openssl ts makes the seal B-T', { timeout: TEST_TIMEOUT_MS }, async () => {
  const started = Date.now();
  const bT = await sealWithPki(input, pki, { timestamp: 'valid' });
  const [check, ...rest] = await verifySealedPdf(bT, { trustedRootsDer: [pki.rootCertDer] });
  assert.equal(rest.length, 0);
  assert.deepEqual(check?.problems, []);
  assert.equal(check.level, 'B-T');
  assert.equal(check.chainTrusted, true);
  assert.equal(check.signatureTimestamp?.valid, true);
  assert.equal(check.signatureTimestamp.chainTrusted, true);
  assert.match(check.signatureTimestamp.tsaSubject ?? '', /CN=Verify Test TSA/);
  const genTime = check.signatureTimestamp.genTime!.getTime();
  assert.ok(genTime >= started - 2000 && genTime <= Date.now() + 2000, `genTime ${genTime}`);
  assert.equal(check.laterChanges, 'none');

  const parts = readSignerInfoParts(extractSignatures(bT)[0]!.cmsDer);
  assert.equal(opensslTsVerify(parts.signatureTimestampTokens[0]!, parts.signatureValue, 'sig-ts'), true);

  const report = await pdfsigOf(bT, 'b-t.pdf');
  assert.match(report, /Signature Validation: Signature is Valid\./);
  assert.match(report, /Certificate Validation: Certificate is Trusted\./);

  // Without roots nothing is trusted or untrusted, and that is no failure.
  const [unchecked] = await verifySealedPdf(bT);
  assert.equal(unchecked?.valid, true);
  assert.equal(unchecked.chainTrusted, undefined);
  assert.equal(unchecked.level, 'B-T');
});

test(
  'a DSS update makes it B-LT and a document timestamp after it B-LTA; pdfsig agrees on both signatures',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const lt = await bLt(await sealWithPki(input, pki, { timestamp: 'valid' }));
    const [ltCheck] = await verifySealedPdf(lt, { trustedRootsDer: [pki.rootCertDer] });
    assert.deepEqual(ltCheck?.problems, []);
    assert.equal(ltCheck.level, 'B-LT');
    assert.equal(ltCheck.coversWholeDocument, false);
    assert.equal(ltCheck.laterChanges, 'validation-data');
    assert.deepEqual(
      ltCheck.revocation.map((r) => [r.serialHex, r.ocsp, r.crl, r.revoked]),
      [['1001', true, true, false]],
    );
    assert.deepEqual(
      ltCheck.tsaRevocation.map((r) => [r.serialHex, r.ocsp, r.crl]),
      [['2002', false, true]],
    );

    const lta = await appendDocTimestamp(lt, pki);
    const checks = await verifySealedPdf(lta, { trustedRootsDer: [pki.rootCertDer] });
    assert.deepEqual(
      checks.map((c) => [c.kind, c.valid, c.level, c.laterChanges, c.coversWholeDocument]),
      [
        ['signature', true, 'B-LTA', 'validation-data', false],
        ['document-timestamp', true, undefined, 'none', true],
      ],
    );
    const [sig, docTs] = checks;
    assert.equal(docTs?.subFilter, 'ETSI.RFC3161');
    assert.equal(docTs.chainTrusted, true);
    assert.match(docTs.documentTimestamp?.tsaSubject ?? '', /CN=Verify Test TSA/);
    assert.deepEqual(sig?.documentTimestamp, docTs.documentTimestamp);

    // pdfsig 22.12 validates the CAdES signature and sees the timestamp field covering the whole file,
    // but cannot validate RFC 3161 tokens ("Unable to validate this type of signature"): openssl ts can.
    const report = await pdfsigOf(lta, 'b-lta.pdf');
    const [first, second] = report.split('Signature #2:');
    assert.match(first!, /Signature Type: ETSI\.CAdES\.detached/);
    assert.match(first!, /Not total document signed/);
    assert.match(first!, /Signature Validation: Signature is Valid\./);
    assert.match(first!, /Certificate Validation: Certificate is Trusted\./);
    assert.match(second!, /Signature Field Name: DocTimeStamp\d+/);
    assert.match(second!, /Signer Certificate Common Name: Verify Test TSA/);
    assert.match(second!, /Total document signed/);
    const [, tsSig] = extractSignatures(lta);
    assert.equal(opensslTsVerify(tsSig!.cmsDer, tsSig!.signedBytes, 'doc-ts'), true);
  },
);

test('one flipped byte in the signed range fails the signature', { timeout: TEST_TIMEOUT_MS }, async () => {
  const sealed = await sealWithPki(input, pki, { timestamp: 'valid' });
  const tampered = Buffer.from(sealed);
  const at = tampered.indexOf('/Title <');
  assert.ok(at > 0 && at < extractSignatures(sealed)[0]!.byteRange[1]);
  tampered[at + 10] = tampered[at + 10] === 0x30 ? 0x31 : 0x30;
  const [check] = await verifySealedPdf(tampered, { trustedRootsDer: [pki.rootCertDer] });
  assert.equal(check?.valid, false);
  assert.equal(check.level, undefined);
  assert.match(check.problems.join(), /message digest does not match/);
  assert.match(await pdfsigOf(tampered, 'tampered.pdf'), /Digest Mismatch/);
});

test(
  'a root that issued neither signer nor TSA fails both chains',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const sealed = await sealWithPki(input, pki, { timestamp: 'valid' });
    const other = extractRootDer(pki.otherRootPemPath);
    const [check] = await verifySealedPdf(sealed, { trustedRootsDer: [other] });
    assert.equal(check?.valid, false);
    assert.equal(check.chainTrusted, false);
    assert.equal(check.signatureTimestamp?.chainTrusted, false);
    assert.match(check.problems.join(), /does not lead to a trusted root/);
    assert.match(check.problems.join(), /signature timestamp: TSA: certificate chain does not lead/);
    // Several roots: any one of them anchors.
    const [both] = await verifySealedPdf(sealed, { trustedRootsDer: [other, pki.rootCertDer] });
    assert.equal(both?.valid, true);
  },
);

test(
  'a timestamp over other data (wrong imprint) fails the signature',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const sealed = await sealWithPki(input, pki, { timestamp: 'wrong-imprint' });
    const [check] = await verifySealedPdf(sealed, { trustedRootsDer: [pki.rootCertDer] });
    assert.equal(check?.valid, false);
    assert.equal(check.signatureTimestamp?.valid, false);
    assert.match(check.problems.join(), /timestamp imprint does not match/);
    const parts = readSignerInfoParts(extractSignatures(sealed)[0]!.cmsDer);
    assert.equal(opensslTsVerify(parts.signatureTimestampTokens[0]!, parts.signatureValue, 'bad-ts'), false);
    // pdfsig does not look at signature timestamps: the signature itself stays valid there.
    assert.match(await pdfsigOf(sealed, 'wrong-imprint.pdf'), /Signature is Valid/);
  },
);

test(
  'a later update that changes the page is reported as other changes and fails the newest signature',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const sealed = await sealWithPki(input, pki, { timestamp: 'valid' });
    const changed = await appendOtherChange(sealed);
    const [check] = await verifySealedPdf(changed, { trustedRootsDer: [pki.rootCertDer] });
    assert.equal(check?.laterChanges, 'other');
    assert.match(check.laterChangeDetails.join(), /page .* changed \(\/Rotate\)/);
    assert.equal(check.valid, false);
    assert.match(check.problems.join(), /newest signature does not cover the whole document/);
    // A document timestamp over the change covers the file, but the change is still reported.
    const stamped = await appendDocTimestamp(changed, pki);
    const [sig, ts] = await verifySealedPdf(stamped, { trustedRootsDer: [pki.rootCertDer] });
    assert.equal(sig?.laterChanges, 'other');
    assert.equal(ts?.valid, true);
  },
);

function extractRootDer(pemPath: string): Buffer {
  return new X509Certificate(readFileSync(pemPath)).raw;
}

test(
  'DocMDP: a certifying signature reports its /P; validation data after it is permitted, other changes are not',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const roots = { trustedRootsDer: [pki.rootCertDer] };
    const certified = await certifyWithPki(input, pki, 2);
    const [alone] = await verifySealedPdf(certified, roots);
    assert.deepEqual(alone?.problems, []);
    assert.equal(alone.docMdpPermission, 2);
    assert.equal(alone.level, 'B-B');
    assert.match(await pdfsigOf(certified, 'certified.pdf'), /Signature is Valid\./);

    const withDss = await appendDss(certified, {
      certsDer: [pki.signerCertDer],
      ocspsDer: [pki.ocspForSigner()],
      crlsDer: [],
      signatureCmsDer: [extractSignatures(certified)[0]!.cmsDer],
    });
    const [afterDss] = await verifySealedPdf(withDss, roots);
    assert.deepEqual(afterDss?.problems, []);
    assert.equal(afterDss.laterChanges, 'validation-data');

    const [afterOther] = await verifySealedPdf(await appendOtherChange(withDss), roots);
    assert.equal(afterOther?.valid, false);
    assert.match(afterOther.problems.join(), /not permitted by DocMDP P=2: page .*\/Rotate/);

    // P=1: not even another signature may follow (a document timestamp may).
    const locked = await certifyWithPki(input, pki, 1);
    const [first, second] = await verifySealedPdf(await certifyWithPki(locked, pki), roots);
    assert.equal(first?.docMdpPermission, 1);
    assert.match(first!.problems.join(), /DocMDP P=1 permits no changes/);
    assert.equal(second?.valid, true);
    const [stampedOnly] = await verifySealedPdf(await appendDocTimestamp(locked, pki), roots);
    assert.deepEqual(stampedOnly?.problems, []);
  },
);

test(
  'a second seal or a document timestamp counts as signing, not other changes, on classic, object-stream and qpdf inputs',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const classicFile = path.join(dir, 'classic-input.pdf');
    await writeFile(classicFile, input);
    execFileSync('qpdf', ['--object-streams=generate', classicFile, path.join(dir, 'qpdf-input.pdf')]);
    const inputs = {
      classic: input,
      objectStreams: await renderSampleInvoice({
        tenantName: 'Verify Test Tenant KK',
        invoiceNumber: 'INV-2026-0043',
        customerName: 'Yamada Shoji KK',
        amount: 1,
        issueDate: '2026-11-30',
        useObjectStreams: true,
      }),
      qpdf: readFileSync(path.join(dir, 'qpdf-input.pdf')),
    };
    for (const [name, pdf] of Object.entries(inputs)) {
      const once = await sealWithPki(pdf, pki);
      for (const later of [await sealWithPki(once, pki), await appendDocTimestamp(once, pki)]) {
        const checks = await verifySealedPdf(later, { trustedRootsDer: [pki.rootCertDer] });
        assert.deepEqual(
          checks.map((c) => [c.valid, c.laterChanges, c.laterChangeDetails]),
          [
            [true, 'validation-data', []],
            [true, 'none', []],
          ],
          name,
        );
      }
    }
  },
);

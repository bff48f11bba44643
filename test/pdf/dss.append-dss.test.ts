import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CmsTemplate, digestToSign } from '../../src/pades';
import {
  appendDss,
  embedCms,
  extractSignatures,
  PdfError,
  PdfLimitError,
  preparePdf,
  readDss,
  renderSampleInvoice,
  vriKey,
  type DssContent,
} from '../../src/pdf';
import { createOpensslTsa, type OpensslTsa } from '../helpers/openssl-tsa';
import { pdfsig } from '../helpers/pdfsig';
import { qpdfJson } from '../helpers/qpdf-json';
import { createTestPki, type TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: TestPki;
let tsa: OpensslTsa;
let dir: string;
/** A sealed (B-B) invoice per cross-reference flavour: classic table, pdf-lib xref stream, qpdf's. */
let sealed: Record<'classic' | 'objectStreams' | 'qpdf', Buffer>;

async function seal(input: Buffer): Promise<Buffer> {
  const template = CmsTemplate.fromCertificates(pki.rsa.chainDer);
  const prepared = await preparePdf(input, { signingTime: new Date(), name: 'Example Tenant KK' });
  const attrs = template.signedAttributes(prepared.contentDigest);
  return embedCms(prepared, template.assemble(attrs, pki.rsa.signDigest(digestToSign(attrs))));
}

before(async () => {
  pki = await createTestPki();
  tsa = await createOpensslTsa();
  dir = await mkdtemp(join(tmpdir(), 'sealer-dss-'));
  const invoice = {
    tenantName: 'Example Tenant KK',
    invoiceNumber: 'INV-2025-0042',
    customerName: 'Yamada Shoji KK',
    amount: 33000,
    issueDate: '2025-01-31',
  };
  const classic = await renderSampleInvoice(invoice);
  writeFileSync(join(dir, 'classic.pdf'), classic);
  execFileSync('qpdf', ['--object-streams=generate', join(dir, 'classic.pdf'), join(dir, 'qpdf.pdf')]);
  sealed = {
    classic: await seal(classic),
    objectStreams: await seal(await renderSampleInvoice({ ...invoice, useObjectStreams: true })),
    qpdf: await seal(readFileSync(join(dir, 'qpdf.pdf'))),
  };
});
after(() => Promise.all([pki.cleanup(), tsa.cleanup(), rm(dir, { recursive: true, force: true })]));

function qpdfCheck(pdf: Buffer, name: string): void {
  const file = join(dir, `${name}-check.pdf`);
  writeFileSync(file, pdf);
  assert.match(
    execFileSync('qpdf', ['--check', file]).toString(),
    /No syntax or stream encoding errors/,
    name,
  );
}

async function firstSealStillValid(pdf: Buffer, name: string): Promise<void> {
  const file = join(dir, `${name}-pdfsig.pdf`);
  writeFileSync(file, pdf);
  const report = await pdfsig(file, pki.nssDb());
  assert.match(
    report,
    /Signature #1:[\s\S]*Signature Validation: Signature is Valid\./,
    `${name}: ${report}`,
  );
  assert.match(report, /Certificate Validation: Certificate is Trusted\./, name);
}

function assertPrefix(before: Buffer, after: Buffer, name: string): void {
  assert.ok(after.length > before.length, `${name}: something was appended`);
  assert.ok(after.subarray(0, before.length).equals(before), `${name}: the input is a byte prefix`);
  const update = after.subarray(before.length).toString('latin1');
  assert.equal(update.match(/%%EOF/g)?.length, 1, `${name}: exactly one update`);
}

for (const flavour of ['classic', 'objectStreams', 'qpdf'] as const) {
  test(
    `appendDss (${flavour}) adds Certs, OCSPs, CRLs and a VRI in one update that qpdf reads back byte for byte`,
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const input = sealed[flavour];
      const [sig] = extractSignatures(input);
      const key = vriKey(sig!.contents);
      const ocsp = tsa.ocspForTsa();
      const crl = tsa.crl();
      const tu = new Date('2025-02-01T03:04:05Z');
      const content: DssContent = {
        certs: pki.rsa.chainDer,
        ocsps: [ocsp],
        crls: [crl],
        vri: new Map([[key, { certs: pki.rsa.chainDer, ocsps: [ocsp], crls: [crl], tu }]]),
      };
      const out = await appendDss(input, content);
      assertPrefix(input, out, flavour);

      const update = out.subarray(input.length).toString('latin1');
      if (flavour === 'classic')
        assert.match(update, /\nxref\n[\s\S]*trailer/, 'classic input, classic xref');
      else {
        assert.match(update, /\/Type \/XRef/, `${flavour}: xref stream like the input`);
        assert.doesNotMatch(update, /\nxref\n/);
      }
      qpdfCheck(out, flavour);

      const view = qpdfJson(out, dir, `${flavour}-dss`);
      const dss = view.dss();
      assert.ok(dss, 'catalog has a /DSS');
      assert.deepEqual(dss.certs, pki.rsa.chainDer, 'Certs hold the chain, leaf first');
      assert.deepEqual(dss.ocsps, [ocsp]);
      assert.deepEqual(dss.crls, [crl]);
      assert.deepEqual(Object.keys(dss.vri), [key]);
      const vri = dss.vri[key]!;
      assert.equal(vri['/Type'], '/VRI');
      // The VRI points at the very streams the DSS arrays hold: nothing is stored twice.
      assert.deepEqual(vri['/Cert'], dss.refs.certs);
      assert.deepEqual(vri['/OCSP'], dss.refs.ocsps);
      assert.deepEqual(vri['/CRL'], dss.refs.crls);
      assert.equal(vri['/TU'], 'u:D:20250201030405Z');
      assert.deepEqual(view.catalog['/Extensions'], {
        '/ESIC': { '/BaseVersion': '/1.7', '/ExtensionLevel': 1 },
      });

      // Streams are Flate-compressed in the file (qpdf above decoded them).
      const certObject = Number(dss.refs.certs[0]!.split(' ')[0]);
      const raw = execFileSync('qpdf', [`--show-object=${certObject}`, join(dir, `${flavour}-dss.pdf`)]);
      assert.match(raw.toString(), /\/Filter \/FlateDecode/);

      // openssl parses what qpdf decoded: real DER, not our own round trip.
      writeFileSync(join(dir, `${flavour}-ocsp.der`), dss.ocsps[0]!);
      assert.match(
        execFileSync('openssl', [
          'ocsp',
          '-respin',
          join(dir, `${flavour}-ocsp.der`),
          '-resp_text',
          '-noverify',
        ]).toString(),
        /Cert Status: good/,
      );

      const read = await readDss(out);
      assert.deepEqual(read.certs, pki.rsa.chainDer);
      assert.deepEqual(read.ocsps, [ocsp]);
      assert.deepEqual(read.crls, [crl]);
      assert.deepEqual(read.vriKeys, [key]);
      assert.deepEqual(read.vri.get(key)?.tu, tu);

      await firstSealStillValid(out, flavour);
    },
  );

  test(
    `appendDss (${flavour}) on a file with a DSS (renewal) keeps every entry, rewrites no stream and adds only new bytes`,
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const input = sealed[flavour];
      const key = vriKey(extractSignatures(input)[0]!.contents);
      const [ocsp1, crl1] = [tsa.ocspForTsa(), tsa.crl()];
      const first = await appendDss(input, {
        certs: pki.rsa.chainDer,
        ocsps: [ocsp1],
        crls: [crl1],
        vri: new Map([[key, { certs: pki.rsa.chainDer, ocsps: [ocsp1] }]]),
      });
      const before = qpdfJson(first, dir, `${flavour}-renew-1`).dss()!;

      const [ocsp2, crl2] = [tsa.ocspForTsa(), tsa.crl()];
      assert.ok(!ocsp1.equals(ocsp2) && !crl1.equals(crl2), 'fresh validation data differs from the old');
      const otherKey = 'A'.repeat(40);
      const second = await appendDss(first, {
        // The root again (already there), and the TSA's chain (new).
        certs: [pki.rsa.chainDer[1]!, tsa.tsaCertDer, tsa.rootDer],
        ocsps: [ocsp1, ocsp2],
        crls: [crl2],
        vri: new Map([
          [key, { ocsps: [ocsp2], crls: [crl2] }],
          [otherKey, { certs: [tsa.tsaCertDer, tsa.rootDer], crls: [crl2] }],
        ]),
      });
      assertPrefix(first, second, `${flavour} renewal`);
      qpdfCheck(second, `${flavour}-renew`);

      const after = qpdfJson(second, dir, `${flavour}-renew-2`).dss()!;
      assert.deepEqual(after.certs, [...pki.rsa.chainDer, tsa.tsaCertDer, tsa.rootDer]);
      assert.deepEqual(after.ocsps, [ocsp1, ocsp2]);
      assert.deepEqual(after.crls, [crl1, crl2]);
      for (const kind of ['certs', 'ocsps', 'crls'] as const) {
        assert.deepEqual(
          after.refs[kind].slice(0, before.refs[kind].length),
          before.refs[kind],
          `${kind}: old refs kept`,
        );
      }
      // No stream of the first DSS is written again: its objects are not redefined by the new update.
      const update = second.subarray(first.length).toString('latin1');
      for (const ref of [...before.refs.certs, ...before.refs.ocsps, ...before.refs.crls]) {
        const n = ref.split(' ')[0];
        assert.doesNotMatch(update, new RegExp(`(^|\\s)${n} 0 obj`), `stream ${ref} is not rewritten`);
      }
      assert.deepEqual(Object.keys(after.vri).sort(), [key, otherKey].sort());
      const renewed = after.vri[key]!;
      assert.deepEqual(renewed['/Cert'], before.vri[key]!['/Cert'], 'old VRI certs kept');
      assert.deepEqual(renewed['/OCSP'], after.refs.ocsps, 'old and new OCSP response');
      assert.deepEqual(renewed['/CRL'], [after.refs.crls[1]]);
      assert.deepEqual(after.vri[otherKey]!['/Cert'], after.refs.certs.slice(2));

      const read = await readDss(second);
      assert.deepEqual(read.vri.get(key)?.ocsps, [ocsp1, ocsp2]);
      await firstSealStillValid(second, `${flavour}-renew`);

      // The same data again is nothing new: no empty revision is appended.
      const third = await appendDss(second, { certs: [tsa.tsaCertDer], ocsps: [ocsp2], crls: [] });
      assert.equal(third.length, second.length);
      assert.ok(third.equals(second));
    },
  );
}

test(
  'vriKey is the upper-case SHA-1 of the whole /Contents string (zero padding included), as qpdf and openssl see it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const input = sealed.classic;
    const [sig] = extractSignatures(input);
    const [field] = qpdfJson(input, dir, 'vri-key').signatureFields();
    const contents = Buffer.from(field!.contentsHex, 'hex');
    assert.ok(
      contents.equals(sig!.contents),
      'EmbeddedSignature.contents is the /Contents string qpdf reads',
    );
    assert.ok(contents.length > sig!.cmsDer.length, 'the placeholder is padded after the CMS');
    writeFileSync(join(dir, 'contents.bin'), contents);
    const sha1 = /= ([0-9a-f]{40})/.exec(
      execFileSync('openssl', ['dgst', '-sha1', join(dir, 'contents.bin')]).toString(),
    )![1]!;
    assert.equal(vriKey(sig!.contents), sha1.toUpperCase());
    assert.notEqual(vriKey(sig!.cmsDer), vriKey(sig!.contents), 'the padding is part of what is hashed');
  },
);

test('readDss of a file without a DSS is empty', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.deepEqual(await readDss(sealed.classic), {
    certs: [],
    ocsps: [],
    crls: [],
    vriKeys: [],
    vri: new Map(),
  });
});

test(
  'appendDss refuses malformed content with a PdfError naming it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const input = sealed.classic;
    const bad = (content: DssContent, pattern: RegExp) =>
      assert.rejects(
        appendDss(input, content),
        (e: unknown) => e instanceof PdfError && pattern.test(e.message),
      );
    await bad(
      { certs: [], ocsps: [], crls: [], vri: new Map([['abc', {}]]) },
      /VRI key "abc" is not 40 upper-case hex/,
    );
    await bad({ certs: [], ocsps: [], crls: [], vri: new Map([['a'.repeat(40), {}]]) }, /upper-case/);
    await bad({ certs: [Buffer.alloc(0)], ocsps: [], crls: [] }, /empty DER item/);
    await bad(
      { certs: [], ocsps: [], crls: [], vri: new Map([['B'.repeat(40), { tu: new Date('x') }]]) },
      /tu is not a valid Date/,
    );
    await assert.rejects(
      appendDss(Buffer.from('not a pdf'), { certs: [], ocsps: [], crls: [] }),
      /not a PDF/,
    );
  },
);

test(
  'readDss and appendDss decode existing DSS streams under maxInflatedBytes (a bomb is a PdfLimitError)',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // 4 MiB of zeros deflate to a few KB: harmless to write, over a 1 MiB cap to read back.
    const big = Buffer.alloc(4 * 1024 * 1024);
    const withBig = await appendDss(sealed.classic, { certs: [big], ocsps: [], crls: [] });
    assert.ok(withBig.length - sealed.classic.length < 64 * 1024, 'stored compressed');
    const overCap = (e: unknown) => e instanceof PdfLimitError && /more than 1048576 bytes/.test(e.message);
    await assert.rejects(readDss(withBig, { maxInflatedBytes: 1024 * 1024 }), overCap);
    await assert.rejects(
      appendDss(
        withBig,
        { certs: [], ocsps: [tsa.ocspForTsa()], crls: [] },
        { maxInflatedBytes: 1024 * 1024 },
      ),
      overCap,
    );
    assert.equal(
      (await readDss(withBig)).certs[0]?.length,
      big.length,
      'within the default cap it reads back',
    );
  },
);

// Test-only producers of PAdES B-T..B-LTA files, written before the real producers exist: an openssl
// PKI (root, RSA signer, TSA with a critical timeStamping EKU), timestamp tokens from `openssl ts -reply`,
// an OCSP response from `openssl ocsp` and a CRL from `openssl ca -gencrl`, a signature timestamp put
// into the CMS as an unsigned attribute (pkijs), a tiny DSS writer and a document timestamp placeholder
// (pdf-lib incremental updates). Nothing here is product code.
import { execFileSync } from 'node:child_process';
import { constants, createHash, createPrivateKey, privateEncrypt, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { PDFDict, PDFDocument, PDFHexString, PDFInvalidObject, PDFName, PDFNumber, PDFRef } from 'pdf-lib';
import {
  CmsTemplate,
  digestToSign,
  OID_SIGNATURE_TIMESTAMP_TOKEN,
  readSignerInfoParts,
} from '../../src/pades';
import { embedCms, preparePdf, type PlaceholderLayout } from '../../src/pdf';

const SHA256_DIGEST_INFO_PREFIX = Buffer.from('3031300d060960864801650304020105000420', 'hex');

export interface LtvPki {
  dir: string;
  rootPemPath: string;
  rootCertDer: Buffer;
  signerCertDer: Buffer;
  tsaCertDer: Buffer;
  /** A root nobody issued anything under (for "untrusted root" checks). */
  otherRootPemPath: string;
  /** Signs a precomputed SHA-256 (RSA PKCS#1 v1.5), as a CSC provider's signHash does. */
  signDigest(hash: Buffer): Buffer;
  /** `openssl ts -reply` token over a SHA-256 digest. */
  timestampDigest(sha256: Buffer): Buffer;
  /** DER OCSPResponse (good) for the signer certificate, signed by the root. */
  ocspForSigner(): Buffer;
  /** DER CRL of the root (revoking nothing). */
  crl(): Buffer;
}

function run(dir: string, args: string[]): Buffer {
  return execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

function der(dir: string, pemFile: string): Buffer {
  return new X509Certificate(readFileSync(path.join(dir, pemFile))).raw;
}

export function createLtvPki(dir: string): LtvPki {
  const w = (name: string, text: string) => writeFileSync(path.join(dir, name), text);
  w(
    'ext.cnf',
    [
      '[signer]',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,nonRepudiation',
      '[tsa]',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=critical,timeStamping',
      '',
    ].join('\n'),
  );
  w(
    'ts.cnf',
    [
      '[tsa]',
      'default_tsa = tsa1',
      '[tsa1]',
      `serial = ${path.join(dir, 'tsaserial')}`,
      'signer_digest = sha256',
      'default_policy = 1.2.3.4.1',
      'digests = sha256',
      'ess_cert_id_alg = sha256',
      'ess_cert_id_chain = no',
      'ordering = no',
      'tsa_name = no',
      '',
    ].join('\n'),
  );
  w('tsaserial', '01\n');
  w('index.txt', '');
  w('crlnumber', '01\n');
  w(
    'ca.cnf',
    [
      '[ca]',
      'default_ca = root',
      '[root]',
      `database = ${path.join(dir, 'index.txt')}`,
      `crlnumber = ${path.join(dir, 'crlnumber')}`,
      'default_md = sha256',
      'default_crl_days = 7',
      '',
    ].join('\n'),
  );
  const root = (name: string, cn: string) =>
    run(dir, [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '30',
      '-subj',
      `/C=JP/O=Verify Test/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  root('root', 'Verify Test Root');
  root('other', 'Unrelated Root');
  const leaf = (name: string, cn: string, serial: string) => {
    run(dir, [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/C=JP/O=Verify Test Tenant KK/CN=${cn}`,
    ]);
    run(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'root.pem',
      '-CAkey',
      'root.key',
      '-set_serial',
      `0x${serial}`,
      '-days',
      '20',
      '-extfile',
      'ext.cnf',
      '-extensions',
      name,
      '-out',
      `${name}.pem`,
    ]);
  };
  leaf('signer', 'Verify Test e-seal', '1001');
  leaf('tsa', 'Verify Test TSA', '2002');
  // openssl's index for `ocsp -index`: status, expiry, revocation date, serial, file, subject.
  const expiry = new Date(Date.now() + 20 * 86400_000).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  w('index.txt', `V\t${expiry}\t\t1001\tunknown\t/C=JP/O=Verify Test Tenant KK/CN=Verify Test e-seal\n`);

  const signerKey = createPrivateKey(readFileSync(path.join(dir, 'signer.key')));
  return {
    dir,
    rootPemPath: path.join(dir, 'root.pem'),
    rootCertDer: der(dir, 'root.pem'),
    signerCertDer: der(dir, 'signer.pem'),
    tsaCertDer: der(dir, 'tsa.pem'),
    otherRootPemPath: path.join(dir, 'other.pem'),
    signDigest: (hash) =>
      privateEncrypt(
        { key: signerKey, padding: constants.RSA_PKCS1_PADDING },
        Buffer.concat([SHA256_DIGEST_INFO_PREFIX, hash]),
      ),
    timestampDigest(sha256) {
      run(dir, [
        'ts',
        '-query',
        '-digest',
        sha256.toString('hex'),
        '-sha256',
        '-cert',
        '-no_nonce',
        '-out',
        'q.tsq',
      ]);
      run(dir, [
        'ts',
        '-reply',
        '-config',
        'ts.cnf',
        '-queryfile',
        'q.tsq',
        '-signer',
        'tsa.pem',
        '-inkey',
        'tsa.key',
        '-token_out',
        '-out',
        'token.der',
      ]);
      return readFileSync(path.join(dir, 'token.der'));
    },
    ocspForSigner() {
      run(dir, ['ocsp', '-issuer', 'root.pem', '-cert', 'signer.pem', '-no_nonce', '-reqout', 'ocsp.req']);
      run(dir, [
        'ocsp',
        '-index',
        'index.txt',
        '-rsigner',
        'root.pem',
        '-rkey',
        'root.key',
        '-CA',
        'root.pem',
        '-reqin',
        'ocsp.req',
        '-respout',
        'ocsp.der',
        '-ndays',
        '1',
      ]);
      return readFileSync(path.join(dir, 'ocsp.der'));
    },
    crl() {
      run(dir, [
        'ca',
        '-gencrl',
        '-config',
        'ca.cnf',
        '-keyfile',
        'root.key',
        '-cert',
        'root.pem',
        '-out',
        'crl.pem',
      ]);
      run(dir, ['crl', '-in', 'crl.pem', '-outform', 'DER', '-out', 'crl.der']);
      return readFileSync(path.join(dir, 'crl.der'));
    },
  };
}

function view(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** The CMS with `token` added as the SignerInfo's id-aa-signatureTimeStampToken unsigned attribute. */
export function withSignatureTimestamp(cmsDer: Buffer, token: Buffer): Buffer {
  const contentInfo = pkijs.ContentInfo.fromBER(view(cmsDer));
  const signedData = new pkijs.SignedData({ schema: contentInfo.content });
  const signerInfo = signedData.signerInfos[0]!;
  signerInfo.unsignedAttrs = new pkijs.SignedAndUnsignedAttributes({
    type: 1,
    attributes: [
      new pkijs.Attribute({
        type: OID_SIGNATURE_TIMESTAMP_TOKEN,
        values: [asn1js.fromBER(view(token)).result],
      }),
    ],
  });
  const out = new pkijs.ContentInfo({
    contentType: contentInfo.contentType,
    content: signedData.toSchema(true),
  });
  return Buffer.from(out.toSchema().toBER());
}

export interface SealOptions {
  /** Put a signature timestamp in; 'wrong-imprint' stamps other data. */
  timestamp?: 'none' | 'valid' | 'wrong-imprint';
}

/** prepare → signed attributes → signDigest → CMS (+ signature timestamp) → embed. */
export async function sealWithPki(input: Buffer, pki: LtvPki, opts: SealOptions = {}): Promise<Buffer> {
  const rootDer = pki.rootCertDer;
  const template = CmsTemplate.fromCertificates([pki.signerCertDer, rootDer]);
  const prepared = await preparePdf(input, {
    signingTime: new Date(),
    name: 'Verify Test Tenant KK',
    signatureBytes: 12000,
  });
  const attrs = template.signedAttributes(prepared.contentDigest);
  let cms = template.assemble(attrs, pki.signDigest(digestToSign(attrs)));
  if (opts.timestamp && opts.timestamp !== 'none') {
    const { signatureValue } = readSignerInfoParts(cms);
    const stamped = opts.timestamp === 'valid' ? signatureValue : Buffer.from('something else');
    cms = withSignatureTimestamp(cms, pki.timestampDigest(createHash('sha256').update(stamped).digest()));
  }
  return embedCms(prepared, cms);
}

/** Appends a DSS (catalog /DSS with /Certs, /OCSPs, /CRLs and a /VRI entry per signature CMS). */
export async function appendDss(
  pdf: Buffer,
  data: { certsDer: Buffer[]; ocspsDer: Buffer[]; crlsDer: Buffer[]; signatureCmsDer: Buffer[] },
): Promise<Buffer> {
  const doc = await PDFDocument.load(pdf, { forIncrementalUpdate: true, updateMetadata: false });
  const snapshot = doc.context.snapshot!;
  const streams = (list: Buffer[]) => list.map((b) => doc.context.register(doc.context.flateStream(b)));
  const certs = streams(data.certsDer);
  const ocsps = streams(data.ocspsDer);
  const crls = streams(data.crlsDer);
  const vri = doc.context.obj({});
  for (const cms of data.signatureCmsDer) {
    const key = createHash('sha1').update(cms).digest('hex').toUpperCase();
    vri.set(PDFName.of(key), doc.context.obj({ Cert: certs, OCSP: ocsps, CRL: crls }));
  }
  const dss = doc.context.obj({ Type: 'DSS', Certs: certs, OCSPs: ocsps, CRLs: crls, VRI: vri });
  doc.catalog.set(PDFName.of('DSS'), doc.context.register(dss));
  const update = await doc.saveIncremental(snapshot, { useObjectStreams: false });
  return Buffer.concat([pdf, update]);
}

/** Appends an update that changes something that is not validation data: the document /Info /Title. */
export async function appendOtherChange(pdf: Buffer): Promise<Buffer> {
  const doc = await PDFDocument.load(pdf, { forIncrementalUpdate: true, updateMetadata: false });
  const snapshot = doc.context.snapshot!;
  const page = doc.getPage(0);
  page.node.set(PDFName.of('Rotate'), PDFNumber.of(90));
  const update = await doc.saveIncremental(snapshot, { useObjectStreams: false });
  return Buffer.concat([pdf, update]);
}

export interface PlaceholderOptions {
  type: 'Sig' | 'DocTimeStamp';
  subFilter: string;
  /** Make it a certifying signature: catalog /Perms /DocMDP and a DocMDP /Reference with this /P. */
  docMdp?: 1 | 2 | 3;
  bytes?: number;
}

/** An incremental update with a signature field and an empty placeholder (test-only stand-in for prepare). */
export async function appendPlaceholder(pdf: Buffer, opts: PlaceholderOptions): Promise<PlaceholderLayout> {
  const tokenBytes = opts.bytes ?? 12000;
  const doc = await PDFDocument.load(pdf, { forIncrementalUpdate: true, updateMetadata: false });
  const snapshot = doc.context.snapshot!;
  const { context } = doc;
  const placeholder = '**********';
  const entries: Record<string, unknown> = {
    Type: opts.type,
    Filter: 'Adobe.PPKLite',
    SubFilter: opts.subFilter,
    ByteRange: [0, PDFName.of(placeholder), PDFName.of(placeholder), PDFName.of(placeholder)],
    Contents: PDFHexString.of('0'.repeat(tokenBytes * 2)),
  };
  if (opts.docMdp) {
    entries.Reference = [
      {
        Type: 'SigRef',
        TransformMethod: 'DocMDP',
        TransformParams: { Type: 'TransformParams', P: opts.docMdp, V: PDFName.of('1.2') },
      },
    ];
  }
  const sig = context.obj(entries as Parameters<typeof context.obj>[0] & Record<string, never>);
  const dictBytes = Buffer.alloc(sig.sizeInBytes());
  sig.copyBytesInto(dictBytes, 0);
  const sigRef = context.register(PDFInvalidObject.of(dictBytes));
  if (opts.docMdp) doc.catalog.set(PDFName.of('Perms'), context.obj({ DocMDP: sigRef }));
  const page = doc.getPage(0);
  const fieldName = `${opts.type}${pdf.length}`;
  const widget = context.register(
    context.obj({
      Type: 'Annot',
      Subtype: 'Widget',
      FT: 'Sig',
      Rect: [0, 0, 0, 0],
      V: sigRef,
      T: PDFHexString.fromText(fieldName),
      F: 132,
      P: page.ref,
    }),
  );
  let acroForm = doc.catalog.lookupMaybe(PDFName.of('AcroForm'), PDFDict);
  if (!acroForm) {
    acroForm = context.obj({ Fields: [] });
    doc.catalog.set(PDFName.of('AcroForm'), context.register(acroForm));
  }
  const fieldsRaw = acroForm.get(PDFName.of('Fields'));
  const fields = fieldsRaw instanceof PDFRef ? context.lookup(fieldsRaw) : fieldsRaw;
  (fields as unknown as { push(r: PDFRef): void }).push(widget);
  const annots = page.node.Annots();
  if (annots) annots.push(widget);
  else page.node.set(PDFName.of('Annots'), context.obj([widget]));
  acroForm.set(PDFName.of('SigFlags'), PDFNumber.of(3));
  const update = await doc.saveIncremental(snapshot, { useObjectStreams: false });
  const bytes = Buffer.concat([pdf, update]);

  const dictAt = bytes.indexOf(dictBytes, pdf.length);
  const contentsAt = dictAt + dictBytes.indexOf('/Contents <', 0, 'latin1') + '/Contents '.length;
  const contentsEnd = contentsAt + 2 + tokenBytes * 2;
  const byteRange: [number, number, number, number] = [
    0,
    contentsAt,
    contentsEnd,
    bytes.length - contentsEnd,
  ];
  const placeholderAt = bytes.indexOf(`/${placeholder}`, dictAt, 'latin1');
  const arrayStart = bytes.lastIndexOf('[', placeholderAt, 'latin1');
  const arrayEnd = bytes.indexOf(']', placeholderAt, 'latin1') + 1;
  const filled = `[0 ${byteRange[1]} ${byteRange[2]} ${byteRange[3]}]`;
  bytes.write(filled.slice(0, -1).padEnd(arrayEnd - arrayStart - 1, ' ') + ']', arrayStart, 'latin1');
  const contentDigest = createHash('sha256')
    .update(bytes.subarray(0, contentsAt))
    .update(bytes.subarray(contentsEnd))
    .digest();
  return { bytes, byteRange, contentDigest, inputLength: pdf.length, signatureBytes: tokenBytes };
}

/** Appends a document timestamp (/Type /DocTimeStamp, /SubFilter /ETSI.RFC3161) over everything before it. */
export async function appendDocTimestamp(pdf: Buffer, pki: LtvPki): Promise<Buffer> {
  const prepared = await appendPlaceholder(pdf, { type: 'DocTimeStamp', subFilter: 'ETSI.RFC3161' });
  return embedCms(prepared, pki.timestampDigest(prepared.contentDigest));
}

/**
 * A CAdES signature through the test-only placeholder: certifying with DocMDP permission `p`, or an
 * approval signature without. Also signs inputs that preparePdf rightly refuses (a P=1 certified file).
 */
export async function certifyWithPki(input: Buffer, pki: LtvPki, p?: 1 | 2 | 3): Promise<Buffer> {
  const prepared = await appendPlaceholder(input, {
    type: 'Sig',
    subFilter: 'ETSI.CAdES.detached',
    ...(p ? { docMdp: p } : {}),
  });
  const template = CmsTemplate.fromCertificates([pki.signerCertDer, pki.rootCertDer]);
  const attrs = template.signedAttributes(prepared.contentDigest);
  return embedCms(prepared, template.assemble(attrs, pki.signDigest(digestToSign(attrs))));
}

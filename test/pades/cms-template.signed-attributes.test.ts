import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CmsTemplate, digestToSign, PadesError } from '../../src/pades';
import { createTestPki, TestPki } from '../helpers/test-pki';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

let pki: TestPki;
before(async () => {
  pki = await createTestPki();
});
after(() => pki.cleanup());

const OID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const OID_SIGNING_TIME = '1.2.840.113549.1.9.5';
const OID_SIGNING_CERT_V2 = '1.2.840.113549.1.9.16.2.47';

function parseSet(der: Buffer): asn1js.Sequence[] {
  const parsed = asn1js.fromBER(new Uint8Array(der));
  assert.equal(parsed.offset, der.length, 'one element, no trailing bytes');
  assert.ok(parsed.result instanceof asn1js.Set);
  return parsed.result.valueBlock.value as asn1js.Sequence[];
}

test('CmsTemplate reads algorithm and serial from the leaf certificate', { timeout: TEST_TIMEOUT_MS }, () => {
  const rsa = CmsTemplate.fromCertificates(pki.rsa.chainDer);
  const ec = CmsTemplate.fromCertificates(pki.ecdsa.chainDer);
  assert.equal(rsa.algorithm, 'rsa-pkcs1-sha256');
  assert.equal(ec.algorithm, 'ecdsa-p256-sha256');
  const serial = pkijs.Certificate.fromBER(new Uint8Array(pki.rsa.certDer)).serialNumber.valueBlock
    .valueHexView;
  assert.equal(
    rsa.certificateSerialHex,
    Buffer.from(serial)
      .toString('hex')
      .replace(/^(00)+/, ''),
  );
  assert.ok(rsa.leafCertificateDer.equals(pki.rsa.certDer));
  assert.throws(() => CmsTemplate.fromCertificates([]), PadesError);
  assert.throws(() => CmsTemplate.fromCertificates([Buffer.from('garbage')]), /not a DER X.509 certificate/);
});

test(
  'signedAttributes holds content-type, message-digest and signing-certificate-v2, no signing-time',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const template = CmsTemplate.fromCertificates(pki.rsa.chainDer);
    const digest = randomBytes(32);
    const attrs = parseSet(template.signedAttributes(digest));
    const byType = new Map(
      attrs.map((a) => [
        (a.valueBlock.value[0] as asn1js.ObjectIdentifier).valueBlock.toString(),
        a.valueBlock.value[1],
      ]),
    );
    assert.deepEqual(
      [...byType.keys()].sort(),
      [OID_CONTENT_TYPE, OID_MESSAGE_DIGEST, OID_SIGNING_CERT_V2].sort(),
    );
    assert.ok(!byType.has(OID_SIGNING_TIME));

    const contentType = (byType.get(OID_CONTENT_TYPE) as asn1js.Set).valueBlock
      .value[0] as asn1js.ObjectIdentifier;
    assert.equal(contentType.valueBlock.toString(), '1.2.840.113549.1.7.1');
    const md = (byType.get(OID_MESSAGE_DIGEST) as asn1js.Set).valueBlock.value[0] as asn1js.OctetString;
    assert.ok(Buffer.from(md.valueBlock.valueHexView).equals(digest));

    // SigningCertificateV2 { certs SEQUENCE OF ESSCertIDv2 { [hashAlgorithm omitted = sha256], certHash, issuerSerial } }
    const scv2 = (byType.get(OID_SIGNING_CERT_V2) as asn1js.Set).valueBlock.value[0] as asn1js.Sequence;
    const essCertId = (scv2.valueBlock.value[0] as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence;
    const [certHash, issuerSerial] = essCertId.valueBlock.value as [asn1js.OctetString, asn1js.Sequence];
    assert.ok(
      certHash instanceof asn1js.OctetString,
      'hashAlgorithm is omitted because SHA-256 is the DEFAULT',
    );
    assert.ok(
      Buffer.from(certHash.valueBlock.valueHexView).equals(
        createHash('sha256').update(pki.rsa.certDer).digest(),
      ),
    );
    const leaf = pkijs.Certificate.fromBER(new Uint8Array(pki.rsa.certDer));
    const serial = issuerSerial.valueBlock.value[1] as asn1js.Integer;
    assert.ok(serial.isEqual(leaf.serialNumber));
    const generalName = new pkijs.GeneralNames({ schema: issuerSerial.valueBlock.value[0] }).names[0]!;
    assert.equal(generalName.type, 4);
    assert.ok((generalName.value as pkijs.RelativeDistinguishedNames).isEqual(leaf.issuer));
  },
);

test(
  'signedAttributes are in DER SET order: re-encoding the set sorted gives the same bytes',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    for (const signer of [pki.rsa, pki.ecdsa]) {
      const template = CmsTemplate.fromCertificates(signer.chainDer);
      for (let i = 0; i < 20; i++) {
        const der = template.signedAttributes(randomBytes(32));
        const elements = parseSet(der).map((a) => Buffer.from(a.toBER()));
        const sorted = [...elements].sort(Buffer.compare); // lengths differ early, so plain compare is DER order
        const reencoded = Buffer.from(
          new asn1js.Set({ value: sorted.map((e) => asn1js.fromBER(e).result) }).toBER(),
        );
        assert.ok(reencoded.equals(der), 'DER-sorted re-encoding is identical');
      }
    }
  },
);

test('signedAttributes rejects a digest that is not SHA-256 sized', { timeout: TEST_TIMEOUT_MS }, () => {
  const template = CmsTemplate.fromCertificates(pki.ecdsa.chainDer);
  assert.throws(() => template.signedAttributes(randomBytes(20)), /32-byte SHA-256/);
});

test('digestToSign is SHA-256 of the DER SET', { timeout: TEST_TIMEOUT_MS }, () => {
  const der = CmsTemplate.fromCertificates(pki.ecdsa.chainDer).signedAttributes(randomBytes(32));
  assert.ok(digestToSign(der).equals(createHash('sha256').update(der).digest()));
});

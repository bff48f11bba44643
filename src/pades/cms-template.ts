// Builds CAdES signed attributes and the detached CMS SignedData for one credential. Everything that is
// the same for every invoice (certificates, signer identifier, algorithm identifiers, the
// signing-certificate-v2 attribute) is encoded once with pkijs/asn1js; per invoice only the message
// digest and the signature are spliced in as DER, which is what keeps finishing an invoice ~µs.
import { createHash, KeyObject, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { compareDer, derSetOf, readTlv, tlv, TAG } from './der';
import { ecdsaSignatureToDer } from './ecdsa-signature';
import { OID } from './oids';
import { PadesError } from './pades-error';

export type SignatureAlgorithm = 'rsa-pkcs1-sha256' | 'ecdsa-p256-sha256';

const SHA256_LENGTH = 32;

function der(schema: asn1js.BaseBlock): Buffer {
  return Buffer.from(schema.toBER(false));
}

function oid(value: string): asn1js.ObjectIdentifier {
  return new asn1js.ObjectIdentifier({ value });
}

function algorithmIdentifier(algorithmId: string, nullParams: boolean): Buffer {
  // RFC 5754: SHA-2 and ECDSA identifiers omit parameters; rsaEncryption carries NULL (RFC 3370).
  return der(
    new pkijs.AlgorithmIdentifier({
      algorithmId,
      ...(nullParams ? { algorithmParams: new asn1js.Null() } : {}),
    }).toSchema(),
  );
}

function attribute(type: string, value: asn1js.BaseBlock): Buffer {
  return der(new asn1js.Sequence({ value: [oid(type), new asn1js.Set({ value: [value] })] }));
}

function parseCertificate(
  certDer: Buffer,
  position: string,
): { pkijs: pkijs.Certificate; node: X509Certificate } {
  try {
    return { pkijs: pkijs.Certificate.fromBER(new Uint8Array(certDer)), node: new X509Certificate(certDer) };
  } catch (cause) {
    throw new PadesError(`${position} is not a DER X.509 certificate: ${(cause as Error).message}`, {
      cause,
    });
  }
}

function algorithmOf(key: KeyObject): SignatureAlgorithm {
  if (key.asymmetricKeyType === 'rsa') return 'rsa-pkcs1-sha256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return 'ecdsa-p256-sha256';
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  throw new PadesError(
    `leaf certificate key ${key.asymmetricKeyType}${curve ? ` (${curve})` : ''} is not supported; use RSA or ECDSA P-256`,
  );
}

export class CmsTemplate {
  readonly algorithm: SignatureAlgorithm;
  /** Lowercase hex of the leaf's serial number, no sign byte (as openssl and CSC list it, case aside). */
  readonly certificateSerialHex: string;
  readonly leafCertificateDer: Buffer;
  /** RSA modulus length in bytes; a signature of any other length is refused. */
  private readonly rsaSignatureLength: number | undefined;
  private readonly contentTypeAttribute: Buffer;
  private readonly signingCertificateV2Attribute: Buffer;
  /** SEQUENCE header + OID of message-digest + SET header + OCTET STRING header; the digest follows. */
  private readonly messageDigestPrefix: Buffer;
  /** version, digestAlgorithms, encapContentInfo and certificates of SignedData. */
  private readonly signedDataHead: Buffer;
  /** version, sid and digestAlgorithm of the SignerInfo. */
  private readonly signerInfoHead: Buffer;
  private readonly signatureAlgorithmIdentifier: Buffer;
  private readonly contentInfoOid: Buffer;
  private readonly timestampAttributeType = der(oid(OID.signatureTimeStampToken));

  private constructor(chainDer: Buffer[]) {
    if (chainDer.length === 0) throw new PadesError('certificate chain is empty; the leaf must come first');
    const certs = chainDer.map((c) => Buffer.from(c));
    const leaf = parseCertificate(certs[0]!, 'certificate 0 (leaf)');
    certs.slice(1).forEach((c, i) => parseCertificate(c, `certificate ${i + 1} of the chain`));

    this.leafCertificateDer = certs[0]!;
    this.algorithm = algorithmOf(leaf.node.publicKey);
    this.certificateSerialHex = leaf.node.serialNumber.toLowerCase();
    this.rsaSignatureLength =
      this.algorithm === 'rsa-pkcs1-sha256'
        ? (leaf.node.publicKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8
        : undefined;

    const sha256 = algorithmIdentifier(OID.sha256, false);
    this.signatureAlgorithmIdentifier =
      this.algorithm === 'rsa-pkcs1-sha256'
        ? algorithmIdentifier(OID.rsaEncryption, true)
        : algorithmIdentifier(OID.ecdsaWithSha256, false);

    this.contentTypeAttribute = attribute(OID.contentType, oid(OID.data));
    this.messageDigestPrefix = attribute(
      OID.messageDigest,
      new asn1js.OctetString({ valueHex: new Uint8Array(SHA256_LENGTH) }),
    ).subarray(0, -SHA256_LENGTH);

    // ESSCertIDv2 (RFC 5035): hashAlgorithm is omitted because SHA-256 is its DEFAULT, as DER requires.
    const issuerSerial = new asn1js.Sequence({
      value: [
        new pkijs.GeneralNames({
          names: [new pkijs.GeneralName({ type: 4, value: leaf.pkijs.issuer })],
        }).toSchema(),
        leaf.pkijs.serialNumber,
      ],
    });
    const essCertIdV2 = new asn1js.Sequence({
      value: [
        new asn1js.OctetString({ valueHex: createHash('sha256').update(this.leafCertificateDer).digest() }),
        issuerSerial,
      ],
    });
    this.signingCertificateV2Attribute = attribute(
      OID.signingCertificateV2,
      new asn1js.Sequence({ value: [new asn1js.Sequence({ value: [essCertIdV2] })] }),
    );

    const sid = der(
      new pkijs.IssuerAndSerialNumber({
        issuer: leaf.pkijs.issuer,
        serialNumber: leaf.pkijs.serialNumber,
      }).toSchema(),
    );
    const version1 = Buffer.from([TAG.INTEGER, 1, 1]);
    this.signerInfoHead = Buffer.concat([version1, sid, sha256]);
    this.signedDataHead = Buffer.concat([
      version1,
      tlv(TAG.SET, sha256),
      der(new asn1js.Sequence({ value: [oid(OID.data)] })), // detached: eContent absent
      derSetOf(TAG.CONTEXT_0, certs), // [0] IMPLICIT CertificateSet, sorted as a DER SET OF
    ]);
    this.contentInfoOid = der(oid(OID.signedData));
  }

  /** Parses and encodes the credential's chain once. `chainDer` is leaf first. */
  static fromCertificates(chainDer: Buffer[]): CmsTemplate {
    return new CmsTemplate(chainDer);
  }

  /**
   * DER of the SignedAttributes SET: content-type (id-data), message-digest, signing-certificate-v2,
   * in DER order. No signing-time: PAdES takes the claimed time from the signature dictionary's /M.
   */
  signedAttributes(contentDigest: Buffer): Buffer {
    if (contentDigest.length !== SHA256_LENGTH) {
      throw new PadesError(
        `content digest must be a ${SHA256_LENGTH}-byte SHA-256, got ${contentDigest.length} bytes`,
      );
    }
    const messageDigest = Buffer.concat([this.messageDigestPrefix, contentDigest]);
    const attrs = [this.contentTypeAttribute, messageDigest, this.signingCertificateV2Attribute].sort(
      compareDer,
    );
    return tlv(TAG.SET, ...attrs);
  }

  /** The longest signature value for this credential (DER ECDSA at its longest, or the RSA length). */
  private longestSignature(): Buffer {
    // A P-256 ECDSA-Sig-Value is at most 72 bytes: two 33-byte INTEGERs with headers.
    return this.algorithm === 'ecdsa-p256-sha256'
      ? Buffer.from([
          0x30,
          70,
          0x02,
          33,
          0x00,
          ...Buffer.alloc(32, 0xff),
          0x02,
          33,
          0x00,
          ...Buffer.alloc(32, 0xff),
        ])
      : Buffer.alloc(this.rsaSignatureLength ?? 0, 0xff);
  }

  /**
   * The most bytes assemble() can return for this credential (the longest DER ECDSA value, or the RSA
   * modulus length): what a placeholder must hold, so it is sized to the chain rather than guessed.
   */
  get maxCmsLength(): number {
    return this.assemble(this.signedAttributes(Buffer.alloc(SHA256_LENGTH)), this.longestSignature()).length;
  }

  /**
   * The most bytes assemble() can return when it also carries a signature timestamp token of at
   * most `tokenLength` bytes (B-T): maxCmsLength plus the unsigned attribute and the longer headers.
   * Tokens of one TSA vary by a few bytes (serial, nonce, genTime fraction, ECDSA): pass the longest
   * you expect.
   */
  cmsLengthWith(tokenLength: number): number {
    if (!Number.isInteger(tokenLength) || tokenLength < 2) {
      throw new PadesError(`timestamp token length must be an integer of at least 2, got ${tokenLength}`);
    }
    // A stand-in SEQUENCE of exactly tokenLength bytes: the header grows with the content length.
    let content = tokenLength - 2;
    while (content > 0 && tlv(TAG.SEQUENCE, Buffer.alloc(content)).length > tokenLength) content--;
    const stand = tlv(TAG.SEQUENCE, Buffer.alloc(content));
    if (stand.length !== tokenLength) {
      // Some lengths cannot be a single DER element (the header jumps); one byte more is then the bound.
      return this.cmsLengthWith(tokenLength + 1);
    }
    return this.assemble(this.signedAttributes(Buffer.alloc(SHA256_LENGTH)), this.longestSignature(), {
      signatureTimeStampToken: stand,
    }).length;
  }

  /**
   * The exact bytes SignerInfo.signature will hold for a provider's raw signature: ECDSA normalised
   * to DER, RSA checked for length. A B-T timestamp stamps SHA-256 of these bytes.
   */
  signatureValue(signature: Buffer): Buffer {
    if (this.algorithm === 'ecdsa-p256-sha256') return ecdsaSignatureToDer(signature);
    if (signature.length !== this.rsaSignatureLength) {
      throw new PadesError(
        `RSA signature is ${signature.length} bytes; the certificate's key needs ${this.rsaSignatureLength}`,
      );
    }
    return signature;
  }

  /**
   * ContentInfo(SignedData), detached, around a raw signature over digestToSign(signedAttributesDer).
   * With `unsigned.signatureTimeStampToken` (a TimeStampToken over SHA-256 of signatureValue(signature))
   * the SignerInfo also carries it as the unsigned attribute id-aa-signatureTimeStampToken: PAdES B-T.
   */
  assemble(
    signedAttributesDer: Buffer,
    signature: Buffer,
    unsigned?: { signatureTimeStampToken?: Buffer },
  ): Buffer {
    let attrs;
    try {
      attrs = readTlv(signedAttributesDer, 0);
    } catch (cause) {
      throw new PadesError('signed attributes are not DER', { cause });
    }
    if (attrs.tag !== TAG.SET || attrs.end !== signedAttributesDer.length) {
      throw new PadesError('signed attributes must be exactly one DER SET (as signedAttributes() returns)');
    }
    const signatureValue = this.signatureValue(signature);

    const token = unsigned?.signatureTimeStampToken;
    let unsignedAttrs: Buffer[] = [];
    if (token) {
      let t;
      try {
        t = readTlv(token, 0);
      } catch (cause) {
        throw new PadesError('signature timestamp token is not DER', { cause });
      }
      if (t.tag !== TAG.SEQUENCE || t.end !== token.length) {
        throw new PadesError('signature timestamp token must be exactly one DER ContentInfo SEQUENCE');
      }
      // unsignedAttrs is [1] IMPLICIT SET OF Attribute; one attribute, so no sorting to do.
      unsignedAttrs = [
        tlv(TAG.CONTEXT_1, tlv(TAG.SEQUENCE, this.timestampAttributeType, tlv(TAG.SET, token))),
      ];
    }

    // signedAttrs is [0] IMPLICIT in SignerInfo: same content, context tag instead of SET.
    const signerInfo = tlv(
      TAG.SEQUENCE,
      this.signerInfoHead,
      tlv(TAG.CONTEXT_0, signedAttributesDer.subarray(attrs.contentStart)),
      this.signatureAlgorithmIdentifier,
      tlv(TAG.OCTET_STRING, signatureValue),
      ...unsignedAttrs,
    );
    const signedData = tlv(TAG.SEQUENCE, this.signedDataHead, tlv(TAG.SET, signerInfo));
    return tlv(TAG.SEQUENCE, this.contentInfoOid, tlv(TAG.CONTEXT_0, signedData));
  }
}

/** The hash the remote provider signs: SHA-256 of the DER SET of signed attributes. */
export function digestToSign(signedAttributesDer: Buffer): Buffer {
  return createHash('sha256').update(signedAttributesDer).digest();
}

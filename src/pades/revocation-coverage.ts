// Says, for each non-root certificate of a path, whether the DSS holds an OCSP response or a CRL about
// it (matched by serial number and issuer) and whether that data says it is revoked. Presence is what
// B-LT needs; the responses' own signatures are not checked here.
import { createHash } from 'node:crypto';
import * as pkijs from 'pkijs';
import { bytesOf, contentOf, readChildren, readTlv, TAG } from './der';
import { cachedCertificate } from './parsed-certificate';
import { isSelfSigned } from './cert-path';

const OID_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const HASH_BY_OID: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

export interface CertificateRevocation {
  subject: string;
  serialHex: string;
  ocsp: boolean;
  crl: boolean;
  /** Some OCSP response or CRL found lists it as revoked. */
  revoked: boolean;
}

export interface RevocationData {
  ocspsDer: readonly Buffer[];
  crlsDer: readonly Buffer[];
}

interface CertNames {
  serial: Buffer; // INTEGER content
  issuer: Buffer; // Name DER
}

function certNames(der: Buffer): CertNames {
  const tbs = readChildren(der, readChildren(der, readTlv(der, 0))[0]!);
  const offset = tbs[0]?.tag === TAG.CONTEXT_0 ? 1 : 0;
  return { serial: contentOf(der, tbs[offset]!), issuer: bytesOf(der, tbs[offset + 2]!) };
}

function stripSign(serial: Uint8Array): Buffer {
  let i = 0;
  while (i < serial.length - 1 && serial[i] === 0) i++;
  return Buffer.from(serial.subarray(i));
}

function view(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

interface OcspEntry {
  hashName: string;
  issuerNameHash: Buffer;
  serial: Buffer;
  revoked: boolean;
}

interface CrlEntry {
  issuer: Buffer;
  revokedSerials: Buffer[];
}

/** Parsed once per DSS; entries that do not parse are skipped (and named in `unreadable`). */
export class RevocationIndex {
  private readonly ocsp: OcspEntry[] = [];
  private readonly crls: CrlEntry[] = [];
  readonly unreadable: string[] = [];

  constructor(data: RevocationData) {
    data.ocspsDer.forEach((der, i) => {
      try {
        this.addOcsp(der);
      } catch (err) {
        this.unreadable.push(`DSS OCSP response ${i + 1}: ${(err as Error).message}`);
      }
    });
    data.crlsDer.forEach((der, i) => {
      try {
        const crl = pkijs.CertificateRevocationList.fromBER(view(der));
        this.crls.push({
          issuer: Buffer.from(crl.issuer.toSchema().toBER()),
          revokedSerials: (crl.revokedCertificates ?? []).map((r) =>
            stripSign(r.userCertificate.valueBlock.valueHexView),
          ),
        });
      } catch (err) {
        this.unreadable.push(`DSS CRL ${i + 1}: ${(err as Error).message}`);
      }
    });
  }

  private addOcsp(der: Buffer): void {
    const response = pkijs.OCSPResponse.fromBER(view(der));
    if (!response.responseBytes || response.responseBytes.responseType !== OID_OCSP_BASIC) {
      throw new Error('not a successful basic OCSP response');
    }
    const basic = pkijs.BasicOCSPResponse.fromBER(
      view(Buffer.from(response.responseBytes.response.valueBlock.valueHexView)),
    );
    for (const single of basic.tbsResponseData.responses) {
      const hashName = HASH_BY_OID[single.certID.hashAlgorithm.algorithmId];
      if (!hashName) continue;
      this.ocsp.push({
        hashName,
        issuerNameHash: Buffer.from(single.certID.issuerNameHash.valueBlock.valueHexView),
        serial: stripSign(single.certID.serialNumber.valueBlock.valueHexView),
        // CertStatus ::= CHOICE { good [0], revoked [1], unknown [2] }
        revoked: (single.certStatus as { idBlock?: { tagNumber?: number } }).idBlock?.tagNumber === 1,
      });
    }
  }

  /** Coverage of each certificate on the path except a self-signed (root) end. */
  coverage(pathDer: readonly Buffer[]): CertificateRevocation[] {
    const out: CertificateRevocation[] = [];
    for (const der of pathDer) {
      const cert = cachedCertificate(der);
      if (isSelfSigned(cert)) continue;
      const names = certNames(der);
      const serial = stripSign(names.serial);
      const ocsp = this.ocsp.filter(
        (o) =>
          o.serial.equals(serial) &&
          o.issuerNameHash.equals(createHash(o.hashName).update(names.issuer).digest()),
      );
      const crls = this.crls.filter((c) => c.issuer.equals(names.issuer));
      out.push({
        subject: cert.subject.split('\n').join(', '),
        serialHex: cert.serialNumber.toLowerCase(),
        ocsp: ocsp.length > 0,
        crl: crls.length > 0,
        revoked:
          ocsp.some((o) => o.revoked) || crls.some((c) => c.revokedSerials.some((s) => s.equals(serial))),
      });
    }
    return out;
  }
}

// One downloaded CRL (RFC 5280 §5), parsed once and shared by every certificate under its issuer:
// the revoked serials are indexed on first parse, and the issuer's signature is checked once per issuer.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CertificateFacts, verifySignedBytes } from './certificate-facts';
import { CRL_REASON_NAMES, OID } from './oids';
import type { RevocationStatus } from './ocsp';
import { RevocationError } from './revocation-errors';

const DELTA_CRL_INDICATOR = '2.5.29.27';

export interface ParsedCrl {
  url: string;
  /** DER, also when the distribution point served PEM: DER is what goes into a PDF. */
  der: Buffer;
  crl: pkijs.CertificateRevocationList;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Hex of the serialNumber INTEGER's content bytes → revocation. */
  revoked: Map<string, { revokedAt: Date; reason?: string }>;
  /** SHA-256 of the issuer certificates whose signature on this CRL already verified. */
  verifiedBy: Set<string>;
}

const PEM = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/;

/** Parses a distribution point's answer (DER or PEM). Throws RevocationError('invalid'). */
export function parseCrl(body: Buffer, url: string): ParsedCrl {
  let der = body;
  const pem = PEM.exec(body.subarray(0, 64 * 1024).toString('latin1'));
  if (pem) der = Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
  let crl: pkijs.CertificateRevocationList;
  try {
    crl = pkijs.CertificateRevocationList.fromBER(new Uint8Array(der));
  } catch (cause) {
    throw new RevocationError(
      'invalid',
      `${url} did not serve a CRL (DER or PEM): ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  if (crl.crlExtensions?.extensions.some((e) => e.extnID === DELTA_CRL_INDICATOR)) {
    throw new RevocationError('invalid', `${url} served a delta CRL; a complete CRL is needed`);
  }
  const revoked = new Map<string, { revokedAt: Date; reason?: string }>();
  for (const entry of crl.revokedCertificates ?? []) {
    const serial = Buffer.from(entry.userCertificate.valueBlock.valueHexView).toString('hex');
    const reasonExt = entry.crlEntryExtensions?.extensions.find((e) => e.extnID === OID.crlReason);
    let reason: string | undefined;
    if (reasonExt) {
      const parsed = asn1js.fromBER(reasonExt.extnValue.valueBlock.valueHexView).result;
      if (parsed instanceof asn1js.Enumerated) {
        const code = parsed.valueBlock.valueDec;
        reason = CRL_REASON_NAMES[code] ?? `reason ${code}`;
      }
    }
    revoked.set(serial, { revokedAt: entry.revocationDate.value, ...(reason ? { reason } : {}) });
  }
  return {
    url,
    der: Buffer.from(der),
    crl,
    thisUpdate: crl.thisUpdate.value,
    ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate.value } : {}),
    revoked,
    verifiedBy: new Set(),
  };
}

/** The certificate's status by this CRL, after checking issuer, signature and times. */
export function crlStatusFor(
  parsed: ParsedCrl,
  cert: CertificateFacts,
  issuer: CertificateFacts,
  now: Date,
  skewMs: number,
): RevocationStatus {
  const fail = (message: string, cause?: unknown) =>
    new RevocationError(
      'invalid',
      `CRL from ${parsed.url} for certificate ${cert.label}: ${message}`,
      cause === undefined ? undefined : { cause },
    );
  if (!parsed.verifiedBy.has(issuer.sha256)) {
    if (!parsed.crl.issuer.isEqual(issuer.pkijs.subject)) {
      throw fail(`issued by another CA than ${issuer.label} (indirect CRLs are not supported)`);
    }
    let ok: boolean;
    try {
      ok = verifySignedBytes(
        parsed.crl.tbsView,
        parsed.crl.signatureAlgorithm.algorithmId,
        parsed.crl.signatureValue.valueBlock.valueHexView,
        issuer,
      );
    } catch (cause) {
      throw fail((cause as Error).message, cause);
    }
    if (!ok) throw fail(`signature does not verify with the key of ${issuer.label}`);
    parsed.verifiedBy.add(issuer.sha256);
  }
  if (parsed.thisUpdate.getTime() > now.getTime() + skewMs) {
    throw fail(`thisUpdate ${parsed.thisUpdate.toISOString()} is in the future (now ${now.toISOString()})`);
  }
  if (parsed.nextUpdate && parsed.nextUpdate.getTime() < now.getTime() - skewMs) {
    throw fail(`nextUpdate ${parsed.nextUpdate.toISOString()} has passed (now ${now.toISOString()})`);
  }
  const entry = parsed.revoked.get(cert.serialContent.toString('hex'));
  return entry ? { status: 'revoked', ...entry } : { status: 'good' };
}

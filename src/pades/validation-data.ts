// Gathers what a PAdES B-LT DSS must carry for a set of chains (the signer's, the TSA's): every
// distinct certificate, and checked revocation evidence for every certificate that needs it. Also the
// one rule that turns evidence into a decision: assertUsable.
import { certificateFacts, CertificateFacts, oneLineName, sha256Hex } from './certificate-facts';
import { RevocationEvidence, RevocationFetcher } from './revocation';
import { CertificateUnusableError } from './revocation-errors';

export interface ValidationData {
  /** Every distinct certificate of the chains, then responder certificates, each once. */
  certs: Buffer[];
  /** Distinct OCSPResponse DERs. */
  ocsps: Buffer[];
  /** Distinct CRL DERs. */
  crls: Buffer[];
  /** SHA-256 hex of a certificate's DER → its evidence (absent for trust anchors and ocsp-nocheck responders). */
  byCertificate: Map<string, RevocationEvidence>;
}

export interface CollectOptions {
  /** Checked against each non-anchor chain certificate (validity and status). Default: the current time. */
  now?: Date;
  /**
   * Default true: throw CertificateUnusableError for the first chain certificate that is revoked,
   * expired, not yet valid or unknown to its CA (a trust anchor is taken as given).
   */
  requireUsable?: boolean;
}

/** `chains`: each leaf first, ending at its trust anchor (as buildChain returns them). */
export async function collectValidationData(
  chains: Buffer[][],
  fetcher: RevocationFetcher,
  opts: CollectOptions = {},
): Promise<ValidationData> {
  const now = opts.now ?? new Date();
  const certs = new Map<string, Buffer>();
  const ocsps = new Map<string, Buffer>();
  const crls = new Map<string, Buffer>();
  const byCertificate = new Map<string, RevocationEvidence>();
  // Certificates needing evidence, with the issuer to ask about: chain links first, responders later.
  const pending: { cert: CertificateFacts; issuer: CertificateFacts; inChain: boolean }[] = [];

  for (const chain of chains) {
    const facts = chain.map(certificateFacts);
    facts.forEach((c, i) => {
      certs.set(c.sha256, c.der);
      const issuer = facts[i + 1];
      if (issuer) pending.push({ cert: c, issuer, inChain: true }); // the last one is the anchor
    });
  }

  const asked = new Set<string>();
  while (pending.length > 0) {
    const batch = pending.splice(0).filter(({ cert }) => {
      if (asked.has(cert.sha256)) return false;
      asked.add(cert.sha256);
      return true;
    });
    const results = await Promise.all(
      batch.map(({ cert, issuer }) => fetcher.evidenceFor(cert.der, issuer.der)),
    );
    batch.forEach(({ cert, issuer, inChain }, i) => {
      const evidence = results[i]!;
      if (inChain && opts.requireUsable !== false) assertUsable(cert.der, evidence, now);
      byCertificate.set(cert.sha256, evidence);
      (evidence.kind === 'ocsp' ? ocsps : crls).set(sha256Hex(evidence.der), evidence.der);
      for (const extraDer of evidence.extraCertsDer) {
        const extra = certificateFacts(extraDer);
        certs.set(extra.sha256, extra.der);
        // A delegated responder is issued by the CA it answers for (checked when its response was).
        if (!extra.ocspNoCheck) pending.push({ cert: extra, issuer, inChain: false });
      }
    });
  }
  return { certs: [...certs.values()], ocsps: [...ocsps.values()], crls: [...crls.values()], byCertificate };
}

/**
 * Throws CertificateUnusableError when `certDer` must not be used at `now`: outside its validity,
 * revoked, or unknown to its CA's responder (no evidence of good standing can go into the PDF).
 */
export function assertUsable(certDer: Buffer, evidence: RevocationEvidence, now: Date): void {
  const cert = certificateFacts(certDer);
  const subject = oneLineName(cert.x509.subject);
  const unusable = (
    reason: CertificateUnusableError['reason'],
    what: string,
    at?: Date,
    revocationReason?: string,
  ) =>
    new CertificateUnusableError(
      reason,
      subject,
      cert.serialHex,
      cert.sha256,
      `certificate ${subject} serial ${cert.serialHex} ${what}`,
      at,
      revocationReason,
    );
  if (now < cert.notBefore) {
    throw unusable('not-yet-valid', `is not valid before ${cert.notBefore.toISOString()}`, cert.notBefore);
  }
  if (now > cert.notAfter) {
    throw unusable('expired', `expired at ${cert.notAfter.toISOString()}`, cert.notAfter);
  }
  const { status } = evidence;
  if (status.status === 'revoked') {
    const reason = status.reason ? ` (${status.reason})` : '';
    throw unusable(
      'revoked',
      `was revoked at ${status.revokedAt.toISOString()}${reason}`,
      status.revokedAt,
      status.reason,
    );
  }
  if (status.status === 'unknown') {
    throw unusable('status-unknown', `is unknown to its CA's OCSP responder ${evidence.url}`);
  }
}

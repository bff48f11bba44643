// Checks every signature in a PDF: byte range sane and (for the newest) covering the whole file, the CMS
// message digest and signature, and optionally a chain from the signer to a trusted root. Used before a
// sealed file is written and by ops tooling; external validators (pdfsig, openssl) check the same.
import { X509Certificate } from 'node:crypto';
import { extractSignatures, SUBFILTER_ETSI_CADES_DETACHED } from '../pdf';
import { cachedCertificate, inspectCms } from './verify-cms';

export interface SignatureCheck {
  /** Position among the file's signatures, oldest revision first. */
  index: number;
  /** No problems at all (including an untrusted chain when trusted roots were given). */
  valid: boolean;
  problems: string[];
  subFilter: string;
  coversWholeDocument: boolean;
  /** One line, e.g. "C=JP, O=Example KK, CN=Example e-seal". */
  signerSubject?: string;
  certificateSerialHex?: string;
  /** Only set when trusted roots were given. */
  chainTrusted?: boolean;
}

export interface VerifySealedPdfOptions {
  trustedRootsDer?: Buffer[];
  /** Time at which certificates must be valid; default now. */
  at?: Date;
}

function withinValidity(cert: X509Certificate, at: Date): boolean {
  return new Date(cert.validFrom) <= at && at <= new Date(cert.validTo);
}

/** Walks issuer links through the CMS certificates up to one of the roots; returns problems. */
function chainProblems(signerDer: Buffer, pool: Buffer[], rootsDer: Buffer[], at: Date): string[] {
  const roots = rootsDer.map((r) => new X509Certificate(r));
  const candidates = [...pool.map((c) => new X509Certificate(c)), ...roots];
  let current = new X509Certificate(signerDer);
  for (let depth = 0; depth < 8; depth++) {
    if (!withinValidity(current, at))
      return [`certificate ${current.subject.replace(/\n/g, ', ')} is not valid at ${at.toISOString()}`];
    if (roots.some((r) => r.raw.equals(current.raw))) return [];
    const issuer = candidates.find(
      (c) => !c.raw.equals(current.raw) && current.checkIssued(c) && current.verify(c.publicKey),
    );
    if (!issuer) return ['certificate chain does not lead to a trusted root'];
    if (!issuer.ca) return [`issuer ${issuer.subject.replace(/\n/g, ', ')} is not a CA`];
    current = issuer;
  }
  return ['certificate chain is longer than 8'];
}

export async function verifySealedPdf(
  pdf: Buffer,
  opts: VerifySealedPdfOptions = {},
): Promise<SignatureCheck[]> {
  const signatures = extractSignatures(pdf);
  const newestEnd = Math.max(...signatures.map((s) => s.byteRange[2] + s.byteRange[3]));
  const at = opts.at ?? new Date();
  return signatures.map((sig, index) => {
    const problems = [...sig.problems];
    const isNewest = sig.byteRange[2] + sig.byteRange[3] === newestEnd;
    // Earlier revisions' signatures cover their revision only; the newest must cover everything.
    if (isNewest && !sig.coversWholeDocument)
      problems.push('newest signature does not cover the whole document');
    const check: SignatureCheck = {
      index,
      valid: false,
      problems,
      subFilter: sig.subFilter,
      coversWholeDocument: sig.coversWholeDocument,
    };
    if (sig.cmsDer.length > 0) {
      const cms = inspectCms(sig.cmsDer, sig.signedBytes, {
        profile: sig.subFilter === SUBFILTER_ETSI_CADES_DETACHED ? 'pades' : 'cms',
      });
      problems.push(...cms.problems);
      if (cms.signerCertificateDer) {
        const signer = cachedCertificate(cms.signerCertificateDer);
        check.signerSubject = signer.subject.split('\n').join(', ');
        check.certificateSerialHex = signer.serialNumber.toLowerCase();
        if (opts.trustedRootsDer) {
          const chain = chainProblems(
            cms.signerCertificateDer,
            cms.certificatesDer,
            opts.trustedRootsDer,
            at,
          );
          check.chainTrusted = chain.length === 0;
          problems.push(...chain);
        }
      } else if (opts.trustedRootsDer) {
        check.chainTrusted = false;
      }
    }
    check.valid = problems.length === 0;
    return check;
  });
}

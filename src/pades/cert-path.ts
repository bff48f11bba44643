// Builds a certificate path from a leaf through a pool of certificates (the CMS's, a timestamp token's,
// the DSS's) and says whether it ends at one of several trusted roots. The path is also what revocation
// coverage and the B-LT level are judged against, so it is built even when no root is given.
import { X509Certificate } from 'node:crypto';
import { cachedCertificate } from './parsed-certificate';

const MAX_DEPTH = 8;

export interface CertPath {
  /** Leaf first; ends at a trusted root, a self-signed certificate, or where no issuer was found. */
  pathDer: Buffer[];
  /** Undefined when no roots were given ("chain not checked"). */
  trusted?: boolean;
  problems: string[];
}

function oneLine(cert: X509Certificate): string {
  return cert.subject.split('\n').join(', ');
}

function withinValidity(cert: X509Certificate, at: Date): boolean {
  return new Date(cert.validFrom) <= at && at <= new Date(cert.validTo);
}

export function isSelfSigned(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

/**
 * Walks issuer links (name and signature) from `leafDer`. With roots, any one of them ends the path
 * as trusted; validity at `at` is checked for every certificate on the way.
 */
export function buildCertPath(
  leafDer: Buffer,
  poolDer: readonly Buffer[],
  rootsDer: readonly Buffer[] | undefined,
  at: Date,
): CertPath {
  const roots = (rootsDer ?? []).map((r) => cachedCertificate(r));
  const candidates = [...poolDer.map((c) => cachedCertificate(c)), ...roots];
  const pathDer: Buffer[] = [];
  const problems: string[] = [];
  let current = cachedCertificate(leafDer);
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    pathDer.push(current.raw);
    if (!withinValidity(current, at)) {
      problems.push(`certificate ${oneLine(current)} is not valid at ${at.toISOString()}`);
    }
    if (roots.some((r) => r.raw.equals(current.raw))) {
      return { pathDer, trusted: problems.length === 0, problems };
    }
    if (isSelfSigned(current)) break;
    const issuer = candidates.find(
      (c) => !c.raw.equals(current.raw) && current.checkIssued(c) && current.verify(c.publicKey),
    );
    if (!issuer) break;
    if (!issuer.ca) {
      problems.push(`issuer ${oneLine(issuer)} is not a CA`);
      break;
    }
    current = issuer;
  }
  // Without roots nothing is judged: the path is only for revocation coverage and the level.
  if (!rootsDer) return { pathDer, problems: [] };
  if (pathDer.length >= MAX_DEPTH) problems.push(`certificate chain is longer than ${MAX_DEPTH}`);
  else problems.push('certificate chain does not lead to a trusted root');
  return { pathDer, trusted: false, problems };
}

// Builds and checks the path from a certificate (here a TSA's) up to one of a set of trusted roots,
// from whatever certificates came with it: issuer by name and key identifier, each signature checked,
// each certificate valid at the time that matters (a timestamp's genTime), issuers must be CAs.
// Revocation is not checked here; that is LTV data's job (DSS, OCSP, CRL).
import { X509Certificate } from 'node:crypto';

/** Longest path tried: leaf, a few intermediates, root. */
const MAX_DEPTH = 8;

function describe(cert: X509Certificate): string {
  return `"${cert.subject.replace(/\n/g, ', ')}" (serial ${cert.serialNumber.toLowerCase()})`;
}

function checkValidAt(cert: X509Certificate, at: Date, role: string): void {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (at < from || at > to) {
    throw new Error(
      `${role} ${describe(cert)} is not valid at ${at.toISOString()} (valid ${from.toISOString()} to ${to.toISOString()})`,
    );
  }
}

function issues(issuer: X509Certificate, child: X509Certificate): boolean {
  return child.checkIssued(issuer) && child.verify(issuer.publicKey);
}

/**
 * The path leaf → … → trusted root (DER, leaf first), or an Error saying where it broke.
 * `poolDer` may hold unrelated certificates and duplicates; a root found in it is only a trust
 * anchor if it is also in `trustedRootsDer`.
 */
export function verifyCertificatePath(
  leafDer: Buffer,
  poolDer: Buffer[],
  trustedRootsDer: Buffer[],
  at: Date,
): Buffer[] {
  if (trustedRootsDer.length === 0) throw new Error('no trusted roots were given');
  const roots = trustedRootsDer.map((d) => ({ der: d, x509: new X509Certificate(d) }));
  const pool = poolDer.map((d) => ({ der: d, x509: new X509Certificate(d) }));
  let current = { der: leafDer, x509: new X509Certificate(leafDer) };
  const path: Buffer[] = [leafDer];
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    checkValidAt(current.x509, at, depth === 0 ? 'certificate' : 'issuer certificate');
    if (roots.some((r) => r.der.equals(current.der))) return path;
    const root = roots.find((r) => issues(r.x509, current.x509));
    if (root) {
      checkValidAt(root.x509, at, 'trusted root');
      path.push(root.der);
      return path;
    }
    const next = pool.find(
      (c) => !c.der.equals(current.der) && !path.some((p) => p.equals(c.der)) && issues(c.x509, current.x509),
    );
    if (!next) {
      throw new Error(
        `${describe(current.x509)} was not issued by a trusted root nor by any certificate supplied ` +
          `(issuer "${current.x509.issuer.replace(/\n/g, ', ')}")`,
      );
    }
    if (!next.x509.ca) throw new Error(`issuer ${describe(next.x509)} is not a CA certificate`);
    path.push(next.der);
    current = next;
  }
  throw new Error(`no trusted root within ${MAX_DEPTH} certificates`);
}

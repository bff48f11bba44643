// Orders a certificate chain for validation data: the leaf, then each issuer found in a pool of
// candidates, ending at one of the trusted roots. Each link is checked (issuer name, key identifiers,
// signature), so a chain that comes out of here is one a validator will accept as far as links go.
import { certificateFacts, CertificateFacts, isIssuedBy } from './certificate-facts';
import { ChainError } from './revocation-errors';

/** Longer than any real PKI; stops a pool of cross-certificates from looping. */
const MAX_DEPTH = 10;

/**
 * Leaf first, up to and including a trusted root. A leaf that is itself a trusted root gives [leaf].
 * Throws ChainError naming the first certificate whose issuer is not in the pool or the roots.
 */
export function buildChain(leafDer: Buffer, poolDer: Buffer[], trustedRootsDer: Buffer[]): Buffer[] {
  const roots = trustedRootsDer.map(certificateFacts);
  const pool = poolDer.map(certificateFacts);
  const isRoot = (c: CertificateFacts) => roots.some((r) => r.sha256 === c.sha256);
  let current = certificateFacts(leafDer);
  const chain: CertificateFacts[] = [current];
  while (!isRoot(current)) {
    if (chain.length > MAX_DEPTH) {
      throw new ChainError(
        current.label,
        `chain from ${chain[0]!.label} is longer than ${MAX_DEPTH} certificates`,
      );
    }
    // Roots first: a root re-issued as a cross-certificate in the pool must not pull the chain past it.
    const issuer =
      roots.find((r) => isIssuedBy(current, r)) ??
      pool.find((p) => !chain.some((c) => c.sha256 === p.sha256) && isIssuedBy(current, p));
    if (!issuer) {
      const why = current.selfIssued
        ? 'is self-issued but not a trusted root'
        : `has no issuer among the ${pool.length} pool and ${roots.length} trusted certificates ` +
          '(issuer name, key identifier and signature must all match)';
      throw new ChainError(current.label, `certificate ${current.label} ${why}`);
    }
    chain.push(issuer);
    current = issuer;
  }
  return chain.map((c) => c.der);
}

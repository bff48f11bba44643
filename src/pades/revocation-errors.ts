// Errors of chain building and revocation checking. They are separate classes because they decide
// different fates: a ChainError or CertificateUnusableError is permanent for a credential (stop using
// it tonight), a RevocationError of kind 'unavailable' may succeed later, 'invalid' will not.
import { PadesError } from './pades-error';

/** A certificate whose issuer is neither in the pool nor among the trusted roots. */
export class ChainError extends PadesError {
  constructor(
    /** The first certificate that could not be placed (its subject and serial). */
    readonly certificate: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * No usable revocation data: 'unavailable' when no source answered (unreachable, timeout, HTTP error,
 * tryLater), 'invalid' when an answer failed its checks or the certificate names no source at all.
 */
export class RevocationError extends PadesError {
  constructor(
    readonly kind: 'unavailable' | 'invalid',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type UnusableReason = 'revoked' | 'expired' | 'not-yet-valid' | 'status-unknown';

/** The certificate must not be used for sealing: revoked, outside its validity, or unknown to its CA. */
export class CertificateUnusableError extends PadesError {
  constructor(
    readonly reason: UnusableReason,
    /** Subject, one line, e.g. `C=JP, O=Example KK, CN=Example KK e-seal`. */
    readonly subject: string,
    /** Serial number in upper-case hex. */
    readonly serialHex: string,
    /** SHA-256 (hex) of the certificate DER. */
    readonly certificateSha256: string,
    message: string,
    /** Revocation time, or the validity bound that was crossed. */
    readonly at?: Date,
    /** CRLReason name when the revocation gave one (e.g. keyCompromise). */
    readonly revocationReason?: string,
  ) {
    super(message);
  }
}

// Fetches and checks the revocation data of certificates for one night's batch: OCSP where the
// certificate names a responder, its CRL otherwise (or when OCSP fails). Each certificate is looked up
// once for the fetcher's lifetime however many invoices ask, concurrent askers share one request, and a
// CRL is downloaded once per URL for every certificate under it. Nothing here decides a credential's
// fate; assertUsable (validation-data.ts) does.
import { HttpTransportError, requestBytes } from '../common/binary-http';
import { certificateFacts, CertificateFacts } from './certificate-facts';
import { crlStatusFor, parseCrl, ParsedCrl } from './crl';
import { buildOcspRequest, CertIdHash, checkOcspResponse, OcspAnswer, RevocationStatus } from './ocsp';
import { RevocationError } from './revocation-errors';

export type { RevocationStatus } from './ocsp';

export interface RevocationEvidence {
  kind: 'ocsp' | 'crl';
  /** The whole OCSPResponse DER, or the CRL DER (converted from PEM if served so). */
  der: Buffer;
  url: string;
  status: RevocationStatus;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Certificates a validator needs to check this evidence, e.g. a delegated OCSP responder's. */
  extraCertsDer: Buffer[];
  /** Why OCSP was not used although the certificate names a responder (CRL fallback). */
  ocspProblem?: string;
}

export interface RevocationFetcherOptions {
  /** Per HTTP exchange. Default 10 000 ms. */
  timeoutMs?: number;
  /** Largest OCSP response or CRL accepted. Default 10 MB. */
  maxBytes?: number;
  /** The clock every time check uses. Default `() => new Date()`. */
  now?: () => Date;
  /** Extra CA (PEM) for https responders and distribution points. */
  caPem?: string | Buffer;
  /** Hash of the OCSP CertID sent. Default 'sha1' (RFC 5019); responses with SHA-256 CertIDs are accepted too. */
  certIdHash?: CertIdHash;
  /** Allowed clock difference to responders and CRL issuers. Default 5 minutes. */
  skewMs?: number;
}

export interface RevocationStats {
  /** OCSP requests sent. */
  ocspRequests: number;
  /** CRL downloads made. */
  crlRequests: number;
  /** evidenceFor calls answered from the cache or by joining a request already in flight. */
  cacheHits: number;
}

interface Entry<T> {
  promise: Promise<T>;
  /** Set once the promise has resolved; a stale value is fetched again. */
  value?: T;
}

export class RevocationFetcher {
  readonly stats: RevocationStats = { ocspRequests: 0, crlRequests: 0, cacheHits: 0 };
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly now: () => Date;
  private readonly caPem: string | Buffer | undefined;
  private readonly certIdHash: CertIdHash;
  private readonly skewMs: number;
  private readonly evidence = new Map<string, Entry<RevocationEvidence>>();
  private readonly crls = new Map<string, Entry<ParsedCrl>>();

  constructor(opts: RevocationFetcherOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
    this.now = opts.now ?? (() => new Date());
    this.caPem = opts.caPem;
    this.certIdHash = opts.certIdHash ?? 'sha1';
    this.skewMs = opts.skewMs ?? 5 * 60_000;
  }

  /**
   * Checked revocation evidence for `certDer`, issued by `issuerDer`. Throws RevocationError:
   * 'unavailable' when no source could be reached (worth asking again later: failures are not
   * cached), 'invalid' when answers failed their checks or the certificate names no source.
   */
  evidenceFor(certDer: Buffer, issuerDer: Buffer): Promise<RevocationEvidence> {
    let cert: CertificateFacts;
    let issuer: CertificateFacts;
    try {
      cert = certificateFacts(certDer);
      issuer = certificateFacts(issuerDer);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    // Keyed by both: the same certificate checked against another issuer is another question.
    const key = `${cert.sha256}:${issuer.sha256}`;
    return this.cached(this.evidence, key, () => this.fetchEvidence(cert, issuer), true);
  }

  /** Shared by the evidence and CRL caches: in-flight dedupe, failures evicted, stale values refetched. */
  private cached<T extends { nextUpdate?: Date }>(
    map: Map<string, Entry<T>>,
    key: string,
    load: () => Promise<T>,
    countHits: boolean,
  ): Promise<T> {
    const hit = map.get(key);
    if (hit && !(hit.value?.nextUpdate && hit.value.nextUpdate < this.now())) {
      if (countHits) this.stats.cacheHits++;
      return hit.promise;
    }
    const entry: Entry<T> = { promise: load() };
    map.set(key, entry);
    entry.promise.then(
      (value) => {
        entry.value = value;
      },
      () => {
        if (map.get(key) === entry) map.delete(key);
      },
    );
    return entry.promise;
  }

  private async fetchEvidence(cert: CertificateFacts, issuer: CertificateFacts): Promise<RevocationEvidence> {
    if (cert.ocspUrls.length === 0 && cert.crlUrls.length === 0) {
      throw new RevocationError(
        'invalid',
        `certificate ${cert.label} names neither an OCSP responder (AIA) nor an http(s) CRL distribution point`,
      );
    }
    const failures: RevocationError[] = [];
    let unknown: RevocationEvidence | undefined;
    for (const url of cert.ocspUrls) {
      try {
        const evidence = await this.ocsp(url, cert, issuer);
        if (evidence.status.status !== 'unknown') return evidence;
        unknown ??= evidence; // a CRL may still know it
      } catch (err) {
        if (!(err instanceof RevocationError)) throw err;
        failures.push(err);
      }
    }
    const ocspProblem = unknown
      ? `OCSP responder ${unknown.url} does not know the certificate`
      : failures.map((f) => f.message).join('; ');
    for (const url of cert.crlUrls) {
      try {
        const parsed = await this.crl(url);
        const status = crlStatusFor(parsed, cert, issuer, this.now(), this.skewMs);
        return {
          kind: 'crl',
          der: parsed.der,
          url,
          status,
          thisUpdate: parsed.thisUpdate,
          ...(parsed.nextUpdate ? { nextUpdate: parsed.nextUpdate } : {}),
          extraCertsDer: [],
          ...(ocspProblem ? { ocspProblem } : {}),
        };
      } catch (err) {
        if (!(err instanceof RevocationError)) throw err;
        failures.push(err);
      }
    }
    if (unknown) return unknown;
    if (failures.length === 1) throw failures[0]!;
    // Worth retrying if any source was merely unreachable.
    const kind = failures.some((f) => f.kind === 'unavailable') ? 'unavailable' : 'invalid';
    throw new RevocationError(
      kind,
      `no revocation data for certificate ${cert.label}: ${failures.map((f) => f.message).join('; ')}`,
      { cause: failures[0] },
    );
  }

  private async ocsp(
    url: string,
    cert: CertificateFacts,
    issuer: CertificateFacts,
  ): Promise<RevocationEvidence> {
    const request = buildOcspRequest(cert, issuer, this.certIdHash);
    this.stats.ocspRequests++;
    const body = await this.exchange(url, `OCSP responder for certificate ${cert.label}`, {
      method: 'POST',
      body: request.der,
      contentType: 'application/ocsp-request',
      accept: 'application/ocsp-response',
    });
    let answer: OcspAnswer;
    try {
      answer = checkOcspResponse(body, {
        cert,
        issuer,
        nonceExtnValue: request.nonceExtnValue,
        now: this.now(),
        skewMs: this.skewMs,
        url,
      });
    } catch (err) {
      if (err instanceof RevocationError) throw err;
      // A malformed part (an embedded certificate, a DER length) the checks did not anticipate.
      throw new RevocationError(
        'invalid',
        `OCSP response from ${url} for certificate ${cert.label}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    return {
      kind: 'ocsp',
      der: body,
      url,
      status: answer.status,
      thisUpdate: answer.thisUpdate,
      ...(answer.nextUpdate ? { nextUpdate: answer.nextUpdate } : {}),
      extraCertsDer: answer.responderCertsDer,
    };
  }

  /** One download per URL for the fetcher's lifetime (until its nextUpdate passes). */
  private crl(url: string): Promise<ParsedCrl> {
    return this.cached(
      this.crls,
      url,
      async () => {
        this.stats.crlRequests++;
        const body = await this.exchange(url, 'CRL distribution point', {
          method: 'GET',
          accept: 'application/pkix-crl',
        });
        return parseCrl(body, url);
      },
      false,
    );
  }

  private async exchange(
    url: string,
    what: string,
    r: { method: 'GET' | 'POST'; body?: Buffer; contentType?: string; accept: string },
  ): Promise<Buffer> {
    try {
      const answer = await requestBytes(url, {
        ...r,
        timeoutMs: this.timeoutMs,
        maxBytes: this.maxBytes,
        ...(this.caPem !== undefined ? { caPem: this.caPem } : {}),
      });
      if (answer.status !== 200) {
        throw new RevocationError('unavailable', `${what} ${url} answered HTTP ${answer.status}`);
      }
      return answer.body;
    } catch (err) {
      if (err instanceof HttpTransportError) {
        throw new RevocationError('unavailable', `${what} unreachable: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
}

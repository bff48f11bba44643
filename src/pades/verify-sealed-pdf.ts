// Checks every signature and document timestamp in a PDF, oldest first: byte range, CMS digest and
// signature, the signer's chain to any of the trusted roots, signature timestamps, revocation data in
// the DSS, the PAdES level reached (B-B..B-LTA), DocMDP, and what later updates changed. Used before a
// sealed file is written, by the worker's crash recovery and by `sealer verify`; pdfsig and openssl
// check the same files in the tests. A one-signature file that it covers entirely is checked without
// parsing the PDF's objects, so the worker's path stays cheap.
import { extractSignatures, readRevisions, SUBFILTER_ETSI_CADES_DETACHED } from '../pdf';
import type { EmbeddedSignature, PdfRevision, RevisionReport } from '../pdf';
import { buildCertPath } from './cert-path';
import { RevocationIndex, type CertificateRevocation } from './revocation-coverage';
import { readSignerInfoParts } from './signer-info-parts';
import { cachedCertificate } from './parsed-certificate';
import { inspectCms } from './verify-cms';
import { verifyTimestampToken, type TimestampCheck } from './verify-timestamp';

export const SUBFILTER_ETSI_RFC3161 = 'ETSI.RFC3161';

export type PadesLevel = 'B-B' | 'B-T' | 'B-LT' | 'B-LTA';

export interface TimestampReport {
  valid: boolean;
  genTime?: Date;
  tsaSubject?: string;
  /** Undefined when no roots were given. */
  chainTrusted?: boolean;
  problems: string[];
}

export interface SignatureCheck {
  /** Position among the file's signatures and document timestamps, oldest revision first. */
  index: number;
  kind: 'signature' | 'document-timestamp';
  /** No problems at all (including an untrusted chain when trusted roots were given). */
  valid: boolean;
  problems: string[];
  subFilter: string;
  byteRange: [number, number, number, number];
  coversWholeDocument: boolean;
  /** One line, e.g. "C=JP, O=Example KK, CN=Example e-seal" (the TSA's for a document timestamp). */
  signerSubject?: string;
  certificateSerialHex?: string;
  /** Only set when trusted roots were given; otherwise the chain was not checked. */
  chainTrusted?: boolean;
  /** Highest PAdES baseline level reached; only for valid signatures. */
  level?: PadesLevel;
  /** The signature's own timestamp (id-aa-signatureTimeStampToken), when it has one. */
  signatureTimestamp?: TimestampReport;
  /** A document timestamp: its own token; a signature: the one that covers it (the B-LTA one first). */
  documentTimestamp?: TimestampReport;
  /** Signer (or TSA) chain: DSS revocation data for each non-root certificate. */
  revocation: CertificateRevocation[];
  /** The signature timestamp's TSA chain, likewise. */
  tsaRevocation: CertificateRevocation[];
  /** Set for the certifying signature (catalog /Perms /DocMDP). */
  docMdpPermission?: 1 | 2 | 3;
  /** Updates after this one: none, only validation data / signatures / document timestamps, or other. */
  laterChanges: 'none' | 'validation-data' | 'other';
  /** What the other later changes were. */
  laterChangeDetails: string[];
}

export interface VerifySealedPdfOptions {
  /** Any of them may anchor a chain (a file may carry a third party's signature). */
  trustedRootsDer?: Buffer[];
  /** Time at which signer certificates must be valid; default now (TSA chains: the token's genTime). */
  at?: Date;
}

function coverageEnd(sig: EmbeddedSignature): number {
  return sig.byteRange[2] + sig.byteRange[3];
}

function toReport(ts: TimestampCheck): TimestampReport {
  const out: TimestampReport = { valid: ts.valid, problems: ts.problems };
  if (ts.genTime) out.genTime = ts.genTime;
  if (ts.tsaSubject) out.tsaSubject = ts.tsaSubject;
  if (ts.chainTrusted !== undefined) out.chainTrusted = ts.chainTrusted;
  return out;
}

interface Working {
  check: SignatureCheck;
  revision: number;
  /** Signer path without a trusted or self-signed end: B-LT cannot be judged complete. */
  pathDer: Buffer[];
  signatureTimestampValid: boolean;
}

/** Whether a revision's DSS holds the path's non-root certificates and revocation data for each. */
function dssCovers(revision: PdfRevision, pathDer: Buffer[]): boolean {
  const dss = revision.dss;
  if (!dss || pathDer.length === 0) return false;
  const coverage = new RevocationIndex(dss).coverage(pathDer);
  const nonRoot = pathDer.slice(0, coverage.length);
  return (
    coverage.length > 0 &&
    coverage.every((c) => (c.ocsp || c.crl) && !c.revoked) &&
    nonRoot.every((der) => dss.certsDer.some((c) => c.equals(der)))
  );
}

async function checkOne(
  sig: EmbeddedSignature,
  index: number,
  dssCerts: Buffer[],
  revocation: RevocationIndex | undefined,
  opts: VerifySealedPdfOptions,
): Promise<Omit<Working, 'revision'>> {
  const problems = [...sig.problems];
  const isDocTimestamp = sig.subFilter === SUBFILTER_ETSI_RFC3161;
  const check: SignatureCheck = {
    index,
    kind: isDocTimestamp ? 'document-timestamp' : 'signature',
    valid: false,
    problems,
    subFilter: sig.subFilter,
    byteRange: sig.byteRange,
    coversWholeDocument: sig.coversWholeDocument,
    revocation: [],
    tsaRevocation: [],
    laterChanges: 'none',
    laterChangeDetails: [],
  };
  const working = { check, pathDer: [] as Buffer[], signatureTimestampValid: false };
  if (sig.cmsDer.length === 0) return working;
  const roots = opts.trustedRootsDer;

  if (isDocTimestamp) {
    const ts = await verifyTimestampToken(sig.cmsDer, sig.signedBytes, {
      trustedRootsDer: roots,
      extraCertificatesDer: dssCerts,
      at: opts.at,
    });
    check.documentTimestamp = toReport(ts);
    problems.push(...ts.problems.map((p) => `document timestamp: ${p}`));
    if (ts.tsaSubject) check.signerSubject = ts.tsaSubject;
    if (ts.tsaCertificateDer) {
      check.certificateSerialHex = cachedCertificate(ts.tsaCertificateDer).serialNumber.toLowerCase();
    }
    if (ts.chainTrusted !== undefined) check.chainTrusted = ts.chainTrusted;
    if (revocation) check.revocation = revocation.coverage(ts.tsaPathDer);
    working.pathDer = ts.tsaPathDer;
    return working;
  }

  const cms = inspectCms(sig.cmsDer, sig.signedBytes, {
    profile: sig.subFilter === SUBFILTER_ETSI_CADES_DETACHED ? 'pades' : 'cms',
  });
  problems.push(...cms.problems);
  if (!cms.signerCertificateDer) {
    if (roots) check.chainTrusted = false;
    return working;
  }
  const signer = cachedCertificate(cms.signerCertificateDer);
  check.signerSubject = signer.subject.split('\n').join(', ');
  check.certificateSerialHex = signer.serialNumber.toLowerCase();
  const path = buildCertPath(
    cms.signerCertificateDer,
    [...cms.certificatesDer, ...dssCerts],
    roots,
    opts.at ?? new Date(),
  );
  if (path.trusted !== undefined) check.chainTrusted = path.trusted;
  problems.push(...path.problems);
  working.pathDer = path.pathDer;
  if (revocation) check.revocation = revocation.coverage(path.pathDer);

  let parts;
  try {
    parts = readSignerInfoParts(sig.cmsDer);
  } catch (err) {
    problems.push(`signer info could not be read: ${(err as Error).message}`);
    return working;
  }
  const token = parts.signatureTimestampTokens[0];
  if (parts.signatureTimestampTokens.length > 1) {
    problems.push('more than one signature timestamp (only the first is checked)');
  }
  if (token) {
    const ts = await verifyTimestampToken(token, parts.signatureValue, {
      trustedRootsDer: roots,
      extraCertificatesDer: [...cms.certificatesDer, ...dssCerts],
      at: opts.at,
    });
    check.signatureTimestamp = toReport(ts);
    working.signatureTimestampValid = ts.valid;
    problems.push(...ts.problems.map((p) => `signature timestamp: ${p}`));
    if (revocation) check.tsaRevocation = revocation.coverage(ts.tsaPathDer);
  }
  return working;
}

function revisionOf(revisions: PdfRevision[], end: number): number {
  const i = revisions.findIndex((r) => r.end >= end);
  return i < 0 ? revisions.length - 1 : i;
}

export async function verifySealedPdf(
  pdf: Buffer,
  opts: VerifySealedPdfOptions = {},
): Promise<SignatureCheck[]> {
  const signatures = extractSignatures(pdf);
  if (signatures.length === 0) return [];
  const newest = signatures[signatures.length - 1]!;
  // Later updates, DSS and DocMDP need the objects; a file its one signature covers entirely does not.
  const needRevisions =
    signatures.length > 1 || !newest.coversWholeDocument || pdf.includes('/DocMDP', 0, 'latin1');
  let report: RevisionReport = { revisions: [{ end: pdf.length }] };
  let revisionError: string | undefined;
  if (needRevisions) {
    try {
      report = await readRevisions(pdf, coverageEnd(signatures[0]!));
    } catch (err) {
      revisionError = `later updates could not be read: ${(err as Error).message}`;
    }
  }
  const { revisions } = report;
  const finalDss = revisions[revisions.length - 1]?.dss;
  const dssCerts = finalDss?.certsDer ?? [];
  const revocation = finalDss ? new RevocationIndex(finalDss) : undefined;

  const all: Working[] = [];
  for (const [index, sig] of signatures.entries()) {
    const w = await checkOne(sig, index, dssCerts, revocation, opts);
    all.push({ ...w, revision: revisionOf(revisions, coverageEnd(sig)) });
  }
  if (revocation?.unreadable.length) {
    for (const w of all) w.check.problems.push(...revocation.unreadable);
  }

  for (const w of all) {
    const { check } = w;
    if (revisionError) check.problems.push(revisionError);
    for (const c of check.revocation.concat(check.tsaRevocation)) {
      if (c.revoked) check.problems.push(`certificate ${c.subject} is revoked according to the DSS`);
    }
    // What came after this signature's revision.
    if (coverageEnd(signatures[check.index]!) < pdf.length) {
      const other = revisionError
        ? ['later updates could not be read']
        : revisions.slice(w.revision + 1).flatMap((r) => r.change?.other ?? []);
      check.laterChanges = other.length ? 'other' : 'validation-data';
      check.laterChangeDetails = other;
    }
    if (report.docMdp && report.docMdp.byteRange.join(' ') === check.byteRange.join(' ')) {
      check.docMdpPermission = report.docMdp.permission;
      if (check.laterChanges === 'other') {
        check.problems.push(
          `changes after the certifying signature are not permitted by DocMDP P=${report.docMdp.permission}: ${check.laterChangeDetails.join('; ')}`,
        );
      } else if (
        report.docMdp.permission === 1 &&
        all.some((o) => o.check.index > check.index && o.check.kind === 'signature')
      ) {
        check.problems.push('a later signature was added although DocMDP P=1 permits no changes');
      }
    }
  }

  // The newest revision must be covered by the newest signature or timestamp, or be validation data.
  const newestCheck = all[all.length - 1]!.check;
  if (!newestCheck.coversWholeDocument && newestCheck.laterChanges !== 'validation-data') {
    newestCheck.problems.push(
      `newest signature does not cover the whole document${newestCheck.laterChangeDetails.length ? `: ${newestCheck.laterChangeDetails.join('; ')}` : ''}`,
    );
  }

  for (const w of all) w.check.valid = w.check.problems.length === 0;
  for (const w of all) {
    const { check } = w;
    if (check.kind !== 'signature') continue;
    const docTimestamps = all.filter((o) => o.check.kind === 'document-timestamp' && o.revision > w.revision);
    const first = docTimestamps[0]?.check.documentTimestamp;
    if (first) check.documentTimestamp = first;
    if (!check.valid) continue;
    check.level = 'B-B';
    if (!w.signatureTimestampValid) continue;
    check.level = 'B-T';
    const ltRevision = revisions.findIndex((r, i) => i > w.revision && dssCovers(r, w.pathDer));
    if (ltRevision < 0) continue;
    check.level = 'B-LT';
    const lta = docTimestamps.find((o) => o.revision >= ltRevision && o.check.valid);
    if (!lta) continue;
    check.level = 'B-LTA';
    check.documentTimestamp = lta.check.documentTimestamp;
  }
  return all.map((w) => w.check);
}

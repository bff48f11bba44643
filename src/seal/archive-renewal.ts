// Archive renewal of a delivered seal (PAdES B-LTA, ETSI EN 319 142-1 5.5): a document timestamp is
// only as durable as its TSA certificate, so before that certificate expires the file gets fresh
// validation data for every chain in it and a new document timestamp over all of it, as further
// incremental updates. The file only grows: no byte of the delivered file changes. This module knows
// PDFs and timestamps only; which files to renew, queues and outbox bookkeeping live in src/queue.
import { createHash, X509Certificate } from 'node:crypto';
import { appendDss, embedCms, extractSignatures, prepareDocTimestamp, readDss, vriKey } from '../pdf';
import type { DssContent, EmbeddedSignature } from '../pdf';
import {
  SUBFILTER_ETSI_RFC3161,
  buildChain,
  collectValidationData,
  inspectCms,
  readSignerInfoParts,
  verifySealedPdf,
  verifyTimestampToken,
  type PadesLevel,
  type RevocationFetcher,
  type SignatureCheck,
  type TimestampSource,
  type TimestampToken,
  type ValidationData,
} from '../pades';
import { SealError } from './seal-error';

/** A renewal that must not be written: the input or the result failed a check. Not worth a retry. */
export class RenewalRefusedError extends SealError {}

export type RenewalAction = 'renew' | 'up-to-date' | 'not-renewable' | 'invalid';

export interface RenewalDecision {
  action: RenewalAction;
  /** One line: why this action (for the dry-run listing, the summary and the audit entry). */
  reason: string;
  /** The seal's level now (undefined when the file does not verify). */
  level?: PadesLevel;
  /** notAfter of the newest document timestamp's TSA certificate, when the file has one. */
  tsaCertificateExpiry?: Date;
  tsaSubject?: string;
}

export interface AssessOptions {
  trustedRootsDer: Buffer[];
  /** Renew when the newest document timestamp's TSA certificate expires within this many ms. */
  withinMs: number;
  now?: Date;
}

/** "365d", "90d", "12h", "30m" → milliseconds; throws naming the value otherwise. */
export function parseMargin(text: string): number {
  const m = /^(\d+)\s*([dhm])$/.exec(text.trim());
  if (!m)
    throw new SealError(`margin ${JSON.stringify(text)} is not a number followed by d, h or m (e.g. 365d)`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'];
  return Number(m[1]) * unit;
}

/** Signatures (CAdES/CMS) and document timestamps of a file, oldest first. */
function split(signatures: EmbeddedSignature[]): { seals: EmbeddedSignature[]; stamps: EmbeddedSignature[] } {
  return {
    seals: signatures.filter((s) => s.subFilter !== SUBFILTER_ETSI_RFC3161),
    stamps: signatures.filter((s) => s.subFilter === SUBFILTER_ETSI_RFC3161),
  };
}

/**
 * Whether a sealed file needs renewing, and why. A file that does not verify is `invalid` and must be
 * left alone; B-B has nothing to renew; B-T and B-LT lack validation data or a document timestamp;
 * B-LTA is renewed when its newest document timestamp's TSA certificate expires within the margin.
 */
export async function assessRenewal(pdf: Buffer, opts: AssessOptions): Promise<RenewalDecision> {
  const now = opts.now ?? new Date();
  let checks: SignatureCheck[];
  try {
    checks = await verifySealedPdf(pdf, { trustedRootsDer: opts.trustedRootsDer, at: now });
  } catch (err) {
    return { action: 'invalid', reason: `fails verification: ${(err as Error).message}` };
  }
  const seal = checks.find((c) => c.kind === 'signature');
  if (!seal) return { action: 'invalid', reason: 'fails verification: no signature in the file' };
  const bad = checks.filter((c) => !c.valid);
  if (bad.length > 0) {
    const what = bad.map((c) => `${c.kind} #${c.index + 1}: ${c.problems.join('; ')}`).join(' | ');
    return { action: 'invalid', reason: `fails verification: ${what}` };
  }
  const level = seal.level ?? 'B-B';
  if (level === 'B-B') return { action: 'not-renewable', reason: 'not renewable (B-B: no timestamp)', level };
  if (level === 'B-T') {
    return { action: 'renew', reason: "B-T: the signer's revocation data is missing (no DSS)", level };
  }
  const newest = split(extractSignatures(pdf)).stamps.at(-1);
  if (level === 'B-LT' || !newest) {
    return { action: 'renew', reason: `${level}: no document timestamp`, level };
  }
  const tsa = await newestTsaCertificate(newest, pdf);
  const expiry = new Date(tsa.validTo);
  const subject = tsa.subject.replace(/\n/g, ', ');
  const left = expiry.getTime() - now.getTime();
  const days = Math.floor(left / 86_400_000);
  const base = { level, tsaCertificateExpiry: expiry, tsaSubject: subject };
  if (left <= opts.withinMs) {
    return {
      action: 'renew',
      reason: `TSA certificate of the newest document timestamp (${subject}) expires ${expiry.toISOString()}, in ${days} days, within the margin`,
      ...base,
    };
  }
  return {
    action: 'up-to-date',
    reason: `TSA certificate expires ${expiry.toISOString()}, in ${days} days`,
    ...base,
  };
}

async function newestTsaCertificate(stamp: EmbeddedSignature, pdf: Buffer): Promise<X509Certificate> {
  const check = await verifyTimestampToken(stamp.cmsDer, stamp.signedBytes, {
    extraCertificatesDer: (await readDss(pdf)).certs,
  });
  if (!check.tsaCertificateDer) {
    throw new RenewalRefusedError('the newest document timestamp does not carry its TSA certificate');
  }
  return new X509Certificate(check.tsaCertificateDer);
}

export interface ArchiveRenewerOptions {
  /** Roots the signer's and every TSA's chain must end in. */
  trustRootsDer: Buffer[];
  /** Where the new document timestamp comes from (the job's TSA, as for sealing). */
  timestamps: TimestampSource;
  /** Shared by the process so each certificate's status is fetched once. */
  revocation: RevocationFetcher;
  maxInflatedBytes?: number;
  now?: () => Date;
}

export interface RenewedPdf {
  /** The renewed file: the input followed by a DSS update and a document timestamp update. */
  renewed: Buffer;
  documentTimestamp: TimestampToken;
  /** The seal's level after renewal (B-LTA). */
  level: PadesLevel;
  /** verifySealedPdf of the renewed file. */
  checks: SignatureCheck[];
}

/** Room for what differs between two tokens of one TSA (as in level-finisher). */
const TOKEN_SIZE_MARGIN = 512;

/**
 * Renews files one at a time with one TSA. `start()` probes the TSA once to size the placeholder of
 * the new document timestamp (a rotated TSA certificate may make tokens larger than the file's).
 */
export class ArchiveRenewer {
  private readonly o: ArchiveRenewerOptions;
  private readonly now: () => Date;
  private tokenBytes = 0;

  constructor(options: ArchiveRenewerOptions) {
    this.o = options;
    this.now = options.now ?? (() => new Date());
  }

  async start(): Promise<void> {
    const probe = await this.o.timestamps.timestamp(
      createHash('sha256').update('sealer renew probe').digest(),
    );
    this.tokenBytes = probe.der.length;
  }

  /**
   * Adds fresh validation data for the signer's chain and every TSA chain in `pdf`, then a document
   * timestamp over everything. Checks before returning: `pdf` is a byte prefix of the result, every
   * earlier signature and timestamp still verifies and the new document timestamp does too. Throws
   * RenewalRefusedError when the input or the result fails a check, TimestampError or RevocationError
   * when the TSA or a responder fails (worth a retry).
   */
  async renew(pdf: Buffer): Promise<RenewedPdf> {
    if (this.tokenBytes === 0) await this.start();
    const now = this.now();
    const roots = this.o.trustRootsDer;
    const before = await verifySealedPdf(pdf, { trustedRootsDer: roots, at: now });
    const broken = before.filter((c) => !c.valid);
    if (before.length === 0 || broken.length > 0) {
      throw new RenewalRefusedError(
        `refusing to renew a file that does not verify: ${broken.map((c) => c.problems.join('; ')).join(' | ') || 'no signature'}`,
      );
    }
    const signatures = extractSignatures(pdf);
    const { seals, stamps } = split(signatures);
    const dssCerts = (await readDss(pdf, { maxInflatedBytes: this.o.maxInflatedBytes })).certs;

    // Fresh data is required for the newest timestamp's TSA chain (the new document timestamp rests on
    // it) and for the signer when the file has no DSS yet. Data the file already carries is protected
    // by the new timestamp: a chain that cannot be refreshed now (an expired certificate its CA no
    // longer answers for) keeps what the DSS has.
    const covered = ['B-LT', 'B-LTA'].includes(before.find((c) => c.kind === 'signature')?.level ?? '');
    const vri = new Map<string, { certs: Buffer[]; ocsps: Buffer[]; crls: Buffer[] }>();
    const all: ValidationData[] = [];
    const gather = async (key: string, chains: () => Promise<Buffer[][]>, required: boolean) => {
      let data: ValidationData;
      try {
        // requireUsable false: a revoked signer is judged by the verification of the result, which
        // sees the new DSS data and fails it.
        data = await collectValidationData(await chains(), this.o.revocation, { now, requireUsable: false });
      } catch (err) {
        if (required) throw err;
        return;
      }
      all.push(data);
      vri.set(key, { certs: data.certs, ocsps: data.ocsps, crls: data.crls });
    };
    for (const seal of seals) {
      const cms = inspectCms(seal.cmsDer, seal.signedBytes, { profile: 'pades' });
      const leaf = cms.signerCertificateDer;
      if (!leaf) throw new RenewalRefusedError('a signature names no signer certificate');
      const pool = [...cms.certificatesDer, ...dssCerts];
      const parts = readSignerInfoParts(seal.cmsDer);
      const chains = async () => {
        const out = [buildChain(leaf, pool, roots)];
        for (const token of parts.signatureTimestampTokens) {
          out.push(await tsaChain(token, parts.signatureValue, pool, roots));
        }
        return out;
      };
      await gather(vriKey(seal.contents), chains, !covered || stamps.length === 0);
    }
    for (const [i, stamp] of stamps.entries()) {
      const chains = async () => [await tsaChain(stamp.cmsDer, stamp.signedBytes, dssCerts, roots)];
      await gather(vriKey(stamp.contents), chains, i === stamps.length - 1);
    }
    const content: DssContent = {
      certs: distinct(all.flatMap((d) => d.certs)),
      ocsps: distinct(all.flatMap((d) => d.ocsps)),
      crls: distinct(all.flatMap((d) => d.crls)),
      vri,
    };
    const withDss = await appendDss(pdf, content, { maxInflatedBytes: this.o.maxInflatedBytes });
    const prepared = await prepareDocTimestamp(withDss, {
      signatureBytes: Math.ceil((this.tokenBytes + TOKEN_SIZE_MARGIN) / 256) * 256,
      maxInflatedBytes: this.o.maxInflatedBytes,
    });
    const documentTimestamp = await this.o.timestamps.timestamp(prepared.contentDigest);
    const renewed = embedCms(prepared, documentTimestamp.der);

    if (renewed.length <= pdf.length || !renewed.subarray(0, pdf.length).equals(pdf)) {
      throw new RenewalRefusedError('renewed file does not keep the delivered file as its byte prefix');
    }
    const checks = await verifySealedPdf(renewed, { trustedRootsDer: roots, at: now });
    const problems = checks
      .filter((c) => !c.valid)
      .map((c) => `${c.kind} #${c.index + 1}: ${c.problems.join('; ')}`);
    if (checks.length !== before.length + 1)
      problems.push(`expected ${before.length + 1} signatures, found ${checks.length}`);
    const added = checks.at(-1);
    if (added?.kind !== 'document-timestamp' || !added.coversWholeDocument) {
      problems.push('the newest revision is not a document timestamp over the whole file');
    }
    const level = checks.find((c) => c.kind === 'signature')?.level;
    if (level !== 'B-LTA') problems.push(`the seal reaches ${level ?? 'no level'} after renewal, not B-LTA`);
    if (problems.length > 0)
      throw new RenewalRefusedError(`renewed file did not verify: ${problems.join(' | ')}`);
    return { renewed, documentTimestamp, level: level!, checks };
  }
}

/** A timestamp token's TSA chain, leaf first, ending at one of the roots. */
async function tsaChain(
  tokenDer: Buffer,
  stamped: Buffer,
  pool: Buffer[],
  roots: Buffer[],
): Promise<Buffer[]> {
  const check = await verifyTimestampToken(tokenDer, stamped, { extraCertificatesDer: pool });
  if (!check.tsaCertificateDer)
    throw new RenewalRefusedError('a timestamp token does not carry its TSA certificate');
  return buildChain(check.tsaCertificateDer, [...check.certificatesDer, ...pool], roots);
}

function distinct(items: Buffer[]): Buffer[] {
  const seen = new Map<string, Buffer>();
  for (const b of items) seen.set(createHash('sha256').update(b).digest('hex'), b);
  return [...seen.values()];
}

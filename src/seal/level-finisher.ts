// Step 3 of sealing, per PAdES level: put the provider's raw signature into the CMS (B-B), add a
// signature timestamp over its value (B-T), append the chains' certificates and revocation data in a
// DSS update (B-LT), and a document timestamp over all of it (B-LTA); verify the CMS before anything
// is returned. One finisher per credential and night: the signer's validation data is fetched once and
// reused, and so is each TSA certificate's; per invoice only the timestamps go over the network.
import { createHash, X509Certificate } from 'node:crypto';
import {
  appendDss,
  embedCms,
  embedCmsInUpdate,
  prepareDocTimestamp,
  vriKey,
  type DssContent,
  type PlaceholderLayout,
} from '../pdf';
import {
  CertificateUnusableError,
  buildChain,
  collectValidationData,
  verifyCms,
  type CmsTemplate,
  type RevocationFetcher,
  type TimestampSource,
  type TimestampToken,
  type ValidationData,
} from '../pades';
import type { PreparedSeal, SealedUpdate } from './prepared-seal';
import { SealError } from './seal-error';

export type SealLevel = 'B-B' | 'B-T' | 'B-LT' | 'B-LTA';

const RANK: Record<SealLevel, number> = { 'B-B': 0, 'B-T': 1, 'B-LT': 2, 'B-LTA': 3 };

/** True when `level` includes what `least` adds (B-LTA includes B-LT includes B-T includes B-B). */
export function atLeast(level: SealLevel, least: SealLevel): boolean {
  return RANK[level] >= RANK[least];
}

/** Room for what differs between two tokens of one TSA: serial, genTime fraction, nonce, DER lengths. */
const TOKEN_SIZE_MARGIN = 512;

/** The PDF updates after signing; by default in this thread, the worker runs them in its thread pool. */
export interface PdfUpdates {
  appendDss(pdf: Buffer, content: DssContent): Promise<Buffer>;
  prepareDocTimestamp(pdf: Buffer, signatureBytes: number): Promise<PlaceholderLayout>;
}

export interface LevelFinisherOptions {
  level: SealLevel;
  template: CmsTemplate;
  /** The credential's chain as the provider gave it, leaf first. */
  chainDer: Buffer[];
  /** Roots the TSA's chain and (from B-LT) the signer's chain must end in. */
  trustRootsDer: Buffer[];
  /** From B-T. */
  timestamps?: TimestampSource;
  /** From B-LT; shared by every finisher of the process so each certificate is fetched once a night. */
  revocation?: RevocationFetcher;
  /** Most bytes loading a PDF may inflate (the DSS and doc-timestamp updates load the sealed file). */
  maxInflatedBytes?: number;
  now?: () => Date;
  updates?: PdfUpdates;
}

export interface FinishedSeal extends SealedUpdate {
  level: SealLevel;
  signatureTimestamp?: TimestampToken;
  documentTimestamp?: TimestampToken;
}

export class LevelFinisher {
  readonly level: SealLevel;
  private readonly o: LevelFinisherOptions;
  private readonly now: () => Date;
  private readonly updates: PdfUpdates;
  /** Bytes a timestamp token of this credential's TSA takes, learnt from a probe by `start()`. */
  private tokenBytes = 0;
  private signerChain: Buffer[] = [];
  /** Validation data per TSA certificate (SHA-256 hex), with the signer's chain in each. */
  private readonly validation = new Map<string, Promise<ValidationData>>();

  constructor(options: LevelFinisherOptions) {
    this.o = options;
    this.level = options.level;
    this.now = options.now ?? (() => new Date());
    const maxInflatedBytes = options.maxInflatedBytes;
    this.updates = options.updates ?? {
      appendDss: (pdf, content) => appendDss(pdf, content, { maxInflatedBytes }),
      prepareDocTimestamp: (pdf, signatureBytes) =>
        prepareDocTimestamp(pdf, { signatureBytes, maxInflatedBytes }),
    };
    if (atLeast(this.level, 'B-T') && !options.timestamps) {
      throw new SealError(`level ${this.level} needs a timestamp source`);
    }
    if (atLeast(this.level, 'B-LT') && !options.revocation) {
      throw new SealError(`level ${this.level} needs a revocation fetcher`);
    }
  }

  /**
   * Once per credential and night, before the first invoice: the signer's certificate must be usable
   * (not expired; from B-LT not revoked, which fetches its revocation data now and keeps it), and one
   * probe timestamp sizes the placeholder to this TSA's tokens. Throws CertificateUnusableError for a
   * revoked or expired certificate (permanent for the credential), TimestampError for a TSA failure.
   */
  async start(): Promise<void> {
    const leaf = this.o.chainDer[0];
    if (!leaf) throw new SealError('the credential has no certificate');
    const now = this.now();
    if (atLeast(this.level, 'B-LT')) {
      // Throws CertificateUnusableError for a revoked, expired or unknown certificate of the chain.
      this.signerChain = buildChain(leaf, this.o.chainDer.slice(1), this.o.trustRootsDer);
      await collectValidationData([this.signerChain], this.o.revocation!, { now });
    } else {
      assertWithinValidity(leaf, now);
    }
    if (atLeast(this.level, 'B-T')) {
      const probe = await this.o.timestamps!.timestamp(createHash('sha256').update('sealer probe').digest());
      this.tokenBytes = probe.der.length;
    }
  }

  private placeholderBytes?: { tokenBytes: number; bytes: number };

  /** Bytes the signature's placeholder must hold at this level (worked out once per TSA token size). */
  get signatureBytes(): number {
    if (this.placeholderBytes?.tokenBytes !== this.tokenBytes) {
      this.placeholderBytes = { tokenBytes: this.tokenBytes, bytes: this.computeSignatureBytes() };
    }
    return this.placeholderBytes.bytes;
  }

  private computeSignatureBytes(): number {
    const { template } = this.o;
    const cms = atLeast(this.level, 'B-T')
      ? template.cmsLengthWith(this.tokenBytes + TOKEN_SIZE_MARGIN)
      : template.maxCmsLength;
    return Math.ceil((cms + 64) / 256) * 256;
  }

  /** Bytes a document timestamp's placeholder holds. */
  private get docTimestampBytes(): number {
    return Math.ceil((this.tokenBytes + TOKEN_SIZE_MARGIN) / 256) * 256;
  }

  /**
   * Puts the provider's raw signature into the CMS, embeds it into the prepared update and verifies it
   * over the bytes that will be written, `source` (the input, as prepare read it) followed by the
   * update, before anything is returned. From B-LT the DSS and document-timestamp updates are written
   * by loading the whole sealed file.
   */
  async finish(prepared: PreparedSeal, signature: Buffer, source: Uint8Array): Promise<FinishedSeal> {
    const { template } = this.o;
    const { inputLength } = prepared;
    if (source.length !== inputLength) {
      throw new SealError(`the input has ${source.length} bytes, the prepared update follows ${inputLength}`);
    }
    let signatureTimestamp: TimestampToken | undefined;
    if (atLeast(this.level, 'B-T')) {
      const imprint = createHash('sha256').update(template.signatureValue(signature)).digest();
      signatureTimestamp = await this.o.timestamps!.timestamp(imprint);
    }
    const signedAttributes = Buffer.from(
      prepared.signedAttributes.buffer,
      prepared.signedAttributes.byteOffset,
      prepared.signedAttributes.byteLength,
    );
    const cms = template.assemble(
      signedAttributes,
      signature,
      signatureTimestamp ? { signatureTimeStampToken: signatureTimestamp.der } : undefined,
    );
    const update = embedCmsInUpdate(
      {
        ...prepared,
        update: Buffer.from(prepared.update.buffer, prepared.update.byteOffset, prepared.update.byteLength),
      },
      cms,
    );
    // The signed ranges of what will be written, hashed here again: the messageDigest came from the
    // prepare thread, so checking the CMS against it alone would not catch bytes changed since.
    const [, contentsAt, contentsEnd] = prepared.byteRange;
    const digest = createHash('sha256')
      .update(source)
      .update(update.subarray(0, contentsAt - inputLength))
      .update(update.subarray(contentsEnd - inputLength))
      .digest();
    const check = verifyCms(
      cms,
      { digest, algorithm: 'sha256' },
      { expectedCertificateDer: template.leafCertificateDer },
    );
    if (!check.valid) throw new SealError(`sealed PDF did not verify: ${check.problems.join('; ')}`);
    if (!atLeast(this.level, 'B-LT')) {
      return { inputLength, update, level: this.level, cms, signatureTimestamp };
    }
    if (!source || source.length !== inputLength) {
      throw new SealError(
        `level ${this.level} needs the input's ${inputLength} bytes to add validation data`,
      );
    }
    const data = await this.validationFor(signatureTimestamp!);
    // The VRI key hashes /Contents as written, zero padding included (see pdf/dss.ts).
    const contents = Buffer.alloc(prepared.signatureBytes);
    cms.copy(contents);
    let sealed: Buffer = Buffer.concat([source, update]);
    const sealedLength = sealed.length;
    const withDss: Buffer = await this.updates.appendDss(sealed, dssContent(data, vriKey(contents)));
    // Validation data is appended, never rewritten: the seal and the input stay a verifiable prefix.
    if (withDss.length <= sealedLength || withDss.compare(sealed, 0, sealedLength, 0, sealedLength) !== 0) {
      throw new SealError('the DSS update did not leave the sealed file as its prefix');
    }
    sealed = withDss;
    if (atLeast(this.level, 'B-LTA')) {
      const docPrepared = await this.updates.prepareDocTimestamp(sealed, this.docTimestampBytes);
      if (docPrepared.bytes.compare(sealed, 0, sealed.length, 0, sealed.length) !== 0) {
        throw new SealError('the document-timestamp update did not leave the sealed file as its prefix');
      }
      const documentTimestamp = await this.o.timestamps!.timestamp(docPrepared.contentDigest);
      sealed = embedCms(docPrepared, documentTimestamp.der);
      return {
        inputLength,
        update: sealed.subarray(inputLength),
        level: this.level,
        cms,
        signatureTimestamp,
        documentTimestamp,
      };
    }
    return { inputLength, update: sealed.subarray(inputLength), level: this.level, cms, signatureTimestamp };
  }

  /** The signer's and this TSA certificate's chains with their revocation data, once per TSA cert. */
  private validationFor(token: TimestampToken): Promise<ValidationData> {
    const key = sha256Hex(token.tsaCertificateDer);
    const known = this.validation.get(key);
    if (known) return known;
    const tsaChain = buildChain(token.tsaCertificateDer, token.certificatesDer, this.o.trustRootsDer);
    // A failed fetch is not kept: the next invoice asks again (the fetcher caches what succeeded).
    const data = collectValidationData([this.signerChain, tsaChain], this.o.revocation!, {
      now: this.now(),
    }).catch((err: unknown) => {
      this.validation.delete(key);
      throw err;
    });
    this.validation.set(key, data);
    return data;
  }
}

function dssContent(data: ValidationData, signatureKey: string): DssContent {
  return {
    certs: data.certs,
    ocsps: data.ocsps,
    crls: data.crls,
    vri: new Map([[signatureKey, { certs: data.certs, ocsps: data.ocsps, crls: data.crls }]]),
  };
}

function sha256Hex(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/** Below B-LT nothing is fetched about the certificate, but an expired one still seals nothing. */
function assertWithinValidity(certDer: Buffer, now: Date): void {
  const cert = new X509Certificate(certDer);
  const subject = cert.subject.replace(/\n/g, ', ');
  const serial = cert.serialNumber.toLowerCase();
  const fingerprint = sha256Hex(certDer);
  if (now < new Date(cert.validFrom)) {
    throw new CertificateUnusableError(
      'not-yet-valid',
      subject,
      serial,
      fingerprint,
      `certificate ${subject} serial ${serial} is not valid before ${new Date(cert.validFrom).toISOString()}`,
      new Date(cert.validFrom),
    );
  }
  if (now > new Date(cert.validTo)) {
    throw new CertificateUnusableError(
      'expired',
      subject,
      serial,
      fingerprint,
      `certificate ${subject} serial ${serial} expired at ${new Date(cert.validTo).toISOString()}`,
      new Date(cert.validTo),
    );
  }
}

// The prepare step, run in a piscina worker thread so PDF parsing and hashing use every core:
// placeholder in one incremental update, byte-range digest, CAdES signed attributes and their digest.
// Input and output are plain serialisable values.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { preparePdf } from '../pdf';
import { CmsTemplate, digestToSign } from '../pades';

export interface PrepareTask {
  sourcePath: string;
  sourceSha256: string;
  signingTime: string;
  /** the credential's chain, leaf first (DER) */
  chain: Uint8Array[];
  reason: string;
  location: string;
  name: string;
  signatureBytes: number;
}

export interface PrepareTaskResult {
  preparedBytes: Uint8Array;
  byteRange: [number, number, number, number];
  contentDigest: Uint8Array;
  inputLength: number;
  signatureBytes: number;
  signedAttributes: Uint8Array;
  hashToSign: Uint8Array;
}

/** Thrown when the source on disk is not the file that was enqueued. */
export class SourceChangedError extends Error {}

const templates = new Map<string, CmsTemplate>();

function templateFor(chain: Uint8Array[]): CmsTemplate {
  const key = crypto
    .createHash('sha256')
    .update(chain[0] ?? new Uint8Array())
    .digest('hex');
  let template = templates.get(key);
  if (!template) {
    template = CmsTemplate.fromCertificates(chain.map((c) => Buffer.from(c)));
    templates.set(key, template);
  }
  return template;
}

export async function prepareTask(task: PrepareTask): Promise<PrepareTaskResult> {
  const input = await fs.readFile(task.sourcePath);
  const actual = crypto.createHash('sha256').update(input).digest('hex');
  if (actual !== task.sourceSha256) {
    throw new SourceChangedError(
      `${task.sourcePath} changed since it was enqueued (SHA-256 ${actual}, expected ${task.sourceSha256})`,
    );
  }
  const prepared = await preparePdf(input, {
    signingTime: new Date(task.signingTime),
    reason: task.reason,
    location: task.location,
    name: task.name,
    signatureBytes: task.signatureBytes,
  });
  const signedAttributes = templateFor(task.chain).signedAttributes(prepared.contentDigest);
  return {
    preparedBytes: prepared.bytes,
    byteRange: prepared.byteRange,
    contentDigest: prepared.contentDigest,
    inputLength: prepared.inputLength,
    signatureBytes: prepared.signatureBytes,
    signedAttributes,
    hashToSign: digestToSign(signedAttributes),
  };
}

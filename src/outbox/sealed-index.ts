// A durable per-tenant index of what has been sealed: one small file per (invoice, source digest)
// under <outbox>/<tenant>/.sealed/, naming the sealed file. It makes "never seal the same document
// twice" hold across run dates and after Redis has lost or expired the job, at one open() per job.
import fs from 'node:fs/promises';
import path from 'node:path';
import { OutboxConflictError, OutboxError, writeNew } from './outbox';

const INDEX_DIR = '.sealed';

function indexPath(root: string, tenant: string, invoiceNumber: string, sourceSha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sourceSha256))
    throw new OutboxError(`not a SHA-256 hex digest: ${sourceSha256}`);
  return path.join(root, tenant, INDEX_DIR, `${invoiceNumber}.${sourceSha256}`);
}

export interface SealedRecord {
  /** the sealed file (absolute path) */
  file: string;
  /** the run that sealed it (absent in entries written before runs were recorded) */
  runId?: string;
}

/** The sealed file recorded for this invoice and source, if any. */
export async function findSealed(
  root: string,
  tenant: string,
  invoiceNumber: string,
  sourceSha256: string,
): Promise<SealedRecord | undefined> {
  try {
    const text = await fs.readFile(indexPath(root, tenant, invoiceNumber, sourceSha256), 'utf8');
    const [relative = '', runId] = text.split('\n').map((l) => l.trim());
    return { file: path.resolve(root, tenant, relative), runId: runId || undefined };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OutboxError(`cannot read the sealed index for invoice ${invoiceNumber}`, { cause: err });
  }
}

/**
 * Records `sealedFile` as the seal of this invoice and source, by run `runId`; an existing record is
 * kept. It is written last in a delivery: once it exists, the file, manifest row and audit entry do.
 */
export async function recordSealed(
  root: string,
  tenant: string,
  invoiceNumber: string,
  sourceSha256: string,
  sealedFile: string,
  runId?: string,
): Promise<void> {
  const relative = path.relative(path.join(root, tenant), sealedFile);
  try {
    await writeNew(
      indexPath(root, tenant, invoiceNumber, sourceSha256),
      Buffer.from(`${relative}\n${runId ?? ''}\n`),
    );
  } catch (err) {
    if (!(err instanceof OutboxConflictError)) throw err;
  }
}

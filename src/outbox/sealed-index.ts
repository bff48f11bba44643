// A durable per-tenant index of what has been sealed: one small record per (invoice, source digest)
// under <outbox>/<tenant>/.sealed/, naming the sealed file and the run that sealed it. It makes "never
// seal the same document twice" hold across run dates and after Redis has lost or expired the job, at
// one readlink() per job. Records are symbolic links (createRecord): one syscall and the folder's
// group sync per invoice instead of a second file written and synced; entries written as files
// (before, or where the file system has no links) are read the same way.
import fs from 'node:fs/promises';
import path from 'node:path';
import { createRecord, FileExistsError, readRecord } from './atomic-write';
import { OutboxError } from './outbox';

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
  let record: string | undefined;
  try {
    record = await readRecord(indexPath(root, tenant, invoiceNumber, sourceSha256));
  } catch (err) {
    throw new OutboxError(`cannot read the sealed index for invoice ${invoiceNumber}`, { cause: err });
  }
  // "<file> <run>" (a link), or "<file>\n<run>" (a file); neither part holds white space. An empty
  // record (a file system that lost a link's target in a power cut) records nothing: the worker then
  // finds the sealed file itself and repair records it again (recordSealed replaces such a record).
  const [relative = '', runId] = (record ?? '').trim().split(/\s+/);
  if (!relative) return undefined;
  return { file: path.resolve(root, tenant, relative), runId: runId || undefined };
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
  if (/\s/.test(relative) || (runId !== undefined && /\s/.test(runId))) {
    throw new OutboxError(`invoice ${invoiceNumber}: a sealed-index record holds no white space`);
  }
  const entry = indexPath(root, tenant, invoiceNumber, sourceSha256);
  const record = runId ? `${relative} ${runId}` : relative;
  try {
    try {
      await createRecord(entry, record);
    } catch (err) {
      if (!(err instanceof FileExistsError)) throw err;
      // The first record is kept, unless it records nothing (see findSealed).
      if ((await readRecord(entry))?.trim()) return;
      await fs.rm(entry, { force: true });
      await createRecord(entry, record).catch((again: unknown) => {
        if (!(again instanceof FileExistsError)) throw again;
      });
    }
  } catch (err) {
    throw new OutboxError(`cannot record invoice ${invoiceNumber} in the sealed index`, { cause: err });
  }
}

// Delivery of a sealed invoice, the outbox's side of sealing: the sealed file (the input's bytes
// followed by the seal's update), its manifest row, its audit entry, then the sealed-index entry that
// says all three exist. Each step is durable before the next begins, and deliveries of the same moment
// share their fsyncs (folder syncs, manifest appends and audit appends are group commits), so a batch
// of invoices costs about one sync per file plus a few for the batch. A crash between two steps leaves
// what `repair` completes, without sealing again. (The manifest row and the audit entry are one step:
// both are written once the file is durable, side by side, so a crash may leave either without the
// other; an invoice whose manifest row cannot be written at all may then have a seal entry and, once
// its attempts are spent, a refusal entry too.)
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { verifySealedPdf } from '../pades';
import type { AuditEntryInput } from './audit-entry';
import { AuditLog } from './audit-log';
import { appendManifestRow, findManifestRow, manifestFacts, type InvoiceFacts } from './manifest';
import { OutboxError, writeNew } from './outbox';
import { recordSealed } from './sealed-index';

/** One sealed invoice, as the sealing part finished it. */
export interface SealedInvoice extends InvoiceFacts {
  /** the outbox root the tenant's job delivers to */
  root: string;
  tenant: string;
  /** where the sealed file goes (sealedFilePath) */
  target: string;
  invoiceNumber: string;
  sourceSha256: string;
  /** the input's bytes (already checked against sourceSha256) and the update after them */
  source: Uint8Array;
  update: Uint8Array;
  signingTime: Date;
  certificateSerial: string;
  credentialId: string;
  level: string;
  job: string;
  runId: string;
}

export interface Delivered {
  file: string;
  sealedSha256: string;
}

/** The seal's audit entry, as deliver and repair write it. */
function sealEntry(
  s: Pick<
    SealedInvoice,
    'root' | 'tenant' | 'target' | 'invoiceNumber' | 'sourceSha256' | 'certificateSerial' | 'credentialId'
  >,
  sealedSha256: string,
): AuditEntryInput {
  return {
    type: 'seal',
    invoice: s.invoiceNumber,
    credentialId: s.credentialId,
    sourceSha256: s.sourceSha256,
    sealedSha256,
    certificateSerial: s.certificateSerial,
    file: path.relative(path.join(s.root, s.tenant), s.target),
  };
}

/**
 * Writes the sealed file (never over an existing one: OutboxConflictError), then its manifest row and
 * audit entry, then its sealed-index entry; resolves once all are durable.
 */
export async function deliver(s: SealedInvoice): Promise<Delivered> {
  await writeNew(s.target, [s.source, s.update]);
  const sealedSha256 = crypto.createHash('sha256').update(s.source).update(s.update).digest('hex');
  // The manifest row and the audit entry need only the file, not each other (repair adds either one
  // alone): written side by side, each in its own group, so a delivery waits for one sync, not two.
  const written = await Promise.allSettled([
    appendManifestRow(path.dirname(s.target), {
      invoiceNumber: s.invoiceNumber,
      file: path.basename(s.target),
      sealedSha256,
      sourceSha256: s.sourceSha256,
      signingTime: s.signingTime.toISOString(),
      certificateSerial: s.certificateSerial,
      job: s.job,
      runId: s.runId,
      level: s.level,
      ...manifestFacts(s, s.signingTime),
      status: 'sealed',
    }),
    // Thrown, not only logged: a seal must have its audit entry; repair adds it without sealing again.
    AuditLog.forTenant(s.root, s.tenant).append(sealEntry(s, sealedSha256)),
  ]);
  for (const w of written) if (w.status === 'rejected') throw w.reason;
  await recordSealed(s.root, s.tenant, s.invoiceNumber, s.sourceSha256, s.target, s.runId);
  return { file: s.target, sealedSha256 };
}

/** What an interrupted delivery found, and what repair added. */
export interface Repaired extends Delivered {
  /** the run whose manifest row names the file; absent when the row was missing (who wrote it is unknown) */
  sealedBy?: string;
  level?: string;
  sealedAt: string;
  certificateSerial: string;
  timestampAt?: string;
  /** what was missing and is written now: 'manifest row', 'audit seal entry' */
  restored: string[];
}

/** Thrown when the file at the target is not a seal of this source: nothing is overwritten. */
export class NotASealError extends OutboxError {}

/**
 * Completes a delivery that a crash cut short between writing the sealed file and recording it: the
 * file must hold an intact seal followed by nothing but validation data; the manifest row, the audit
 * entry and the sealed-index entry are added where missing. Never seals or writes the file again.
 */
export async function repair(
  s: Omit<SealedInvoice, 'source' | 'update' | 'signingTime' | 'certificateSerial' | 'level' | 'runId'> & {
    runId: string;
    /** the job's level, for a manifest row the file's own checks cannot tell it for */
    level: string;
  },
): Promise<Repaired> {
  const sealed = await fs.readFile(s.target);
  const checks = await verifySealedPdf(sealed);
  // The newest seal must be intact and followed by nothing but validation data (a B-LT/B-LTA file
  // ends with a DSS or a document timestamp), which must verify too.
  const last = checks.filter((c) => c.kind === 'signature').at(-1);
  if (!last?.valid || last.laterChanges === 'other' || checks.some((c) => c.index > last.index && !c.valid)) {
    throw new NotASealError(
      `invoice ${s.invoiceNumber}: ${s.target} exists but is not a valid seal of this source; not overwriting`,
    );
  }
  const sealedSha256 = crypto.createHash('sha256').update(sealed).digest('hex');
  const mtime = (await fs.stat(s.target)).mtime;
  const certificateSerial = last.certificateSerialHex ?? '';
  const restored: string[] = [];
  const row = await findManifestRow(path.dirname(s.target), s.invoiceNumber, sealedSha256);
  if (!row) {
    await appendManifestRow(path.dirname(s.target), {
      invoiceNumber: s.invoiceNumber,
      file: path.basename(s.target),
      sealedSha256,
      sourceSha256: s.sourceSha256,
      signingTime: mtime.toISOString(),
      certificateSerial,
      job: s.job,
      runId: s.runId,
      level: last.level ?? s.level,
      ...manifestFacts(s, mtime),
      status: 'sealed',
    });
    restored.push('manifest row');
  }
  const audit = AuditLog.forTenant(s.root, s.tenant);
  if (!(await audit.hasSeal(s.invoiceNumber, sealedSha256))) {
    await audit.append(sealEntry({ ...s, certificateSerial }, sealedSha256));
    restored.push('audit seal entry');
  }
  const sealedBy = row?.runId;
  await recordSealed(s.root, s.tenant, s.invoiceNumber, s.sourceSha256, s.target, sealedBy);
  return {
    file: s.target,
    sealedSha256,
    ...(sealedBy && { sealedBy }),
    level: last.level ?? (row?.level || s.level),
    sealedAt: row?.signingTime || mtime.toISOString(),
    certificateSerial,
    ...(last.signatureTimestamp?.genTime && {
      timestampAt: last.signatureTimestamp.genTime.toISOString(),
    }),
    restored,
  };
}

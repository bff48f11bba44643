// Rebuilds a tenant's archive rows from its outbox's manifests (the latest row of each invoice per
// run-date folder): for an outbox sealed before the archive existed, or an index that was lost. An
// upsert, so running it again changes nothing. Manifests from before the finance columns give no
// customer or amount; those rows are indexed with an empty customer and amount 0, and say so.
import fs from 'node:fs/promises';
import path from 'node:path';
import { latestManifestRows } from '../outbox';
import type { ArchiveIndex, ArchivedInvoice } from './archive-index';

const RUN_DATE = /^\d{4}-\d{2}-\d{2}$/;

export interface ReindexResult {
  tenant: string;
  folders: number;
  rows: number;
  /** rows whose manifest had no customer or amount column */
  withoutFacts: number;
}

export async function reindexTenant(
  archive: ArchiveIndex,
  outboxRoot: string,
  tenant: string,
  onFolder?: (folder: string, rows: number) => void,
): Promise<ReindexResult> {
  const tenantDir = path.join(outboxRoot, tenant);
  const folders = (await fs.readdir(tenantDir).catch(() => [] as string[]))
    .filter((n) => RUN_DATE.test(n))
    .sort();
  const result: ReindexResult = { tenant, folders: 0, rows: 0, withoutFacts: 0 };
  for (const folder of folders) {
    const dir = path.join(tenantDir, folder);
    const entries: ArchivedInvoice[] = [];
    for (const row of (await latestManifestRows(dir)).values()) {
      // A manifest reads an empty cell as '', a missing column as undefined: both mean "not known".
      const amount = Number(row.amount);
      const facts = !!row.customer && !!row.amount && Number.isSafeInteger(amount);
      if (!facts) result.withoutFacts++;
      entries.push({
        tenant,
        invoiceNumber: row.invoiceNumber,
        customer: row.customer || '',
        amount: facts ? amount : 0,
        ...(row.issueDate ? { issueDate: row.issueDate } : {}),
        ...(row.registrationNumber ? { registrationNumber: row.registrationNumber } : {}),
        file: path.join(dir, row.file),
        sealedSha256: row.sealedSha256,
        sourceSha256: row.sourceSha256,
        level: row.level || 'B-B',
        sealedAt: row.sealedAtUtc || row.signingTime,
        certificateSerial: row.certificateSerial,
        job: row.job,
        runId: row.runId,
      });
    }
    if (entries.length === 0) continue;
    if (archive.recordMany) await archive.recordMany(entries);
    else for (const e of entries) await archive.record(e);
    result.folders++;
    result.rows += entries.length;
    onFolder?.(folder, entries.length);
  }
  return result;
}

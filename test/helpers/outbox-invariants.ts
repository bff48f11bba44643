// "Every invoice sealed exactly once", checked file by file in a tenant's outbox after a night that
// met crashes or faults: one valid sealed PDF, one manifest row, one index entry and one seal entry
// in a verifying audit chain per invoice; no refusal entry and no temp file left behind.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { auditDir, listAuditFiles, readManifest, verifyTenantAudit } from '../../src/outbox';
import { verifySealedPdf } from '../../src/pades';

export async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walkFiles(p)));
    else out.push(p);
  }
  return out;
}

export interface OutboxFigures {
  pdfs: number;
  manifestRows: number;
  indexEntries: number;
  sealEntries: number;
  refusals: number;
  temps: number;
}

/** Asserts the invariant for `invoices` invoices of `tenant` sealed into `runDate`'s folder. */
export async function assertSealedExactlyOnce(
  outboxRoot: string,
  tenant: string,
  runDate: string,
  invoices: number,
): Promise<OutboxFigures> {
  const tenantDir = path.join(outboxRoot, tenant);
  const files = await walkFiles(tenantDir);
  const temps = files.filter((f) => f.endsWith('.tmp'));
  const pdfs = files.filter((f) => f.endsWith('.pdf'));
  const manifest = await readManifest(path.join(tenantDir, runDate, 'manifest.csv'));
  const index = await fs.readdir(path.join(tenantDir, '.sealed'));
  const entries: { type: string; invoice?: string }[] = [];
  for (const f of await listAuditFiles(auditDir(outboxRoot, tenant))) {
    for (const line of (await fs.readFile(f, 'utf8')).split('\n').filter(Boolean)) {
      entries.push(JSON.parse(line) as { type: string; invoice?: string });
    }
  }
  const figures: OutboxFigures = {
    pdfs: pdfs.length,
    manifestRows: manifest.length,
    indexEntries: index.length,
    sealEntries: entries.filter((e) => e.type === 'seal').length,
    refusals: entries.filter((e) => e.type === 'refusal').length,
    temps: temps.length,
  };
  assert.deepEqual(temps, [], 'no temp file is left behind');
  assert.equal(pdfs.length, invoices, 'one sealed PDF per invoice');
  assert.equal(index.length, invoices, 'one index entry per invoice');
  assert.equal(manifest.length, invoices, 'one manifest row per invoice');
  assert.equal(
    new Set(manifest.map((r) => r.invoiceNumber)).size,
    invoices,
    'no invoice has two manifest rows',
  );
  const seals = new Map<string, number>();
  for (const e of entries.filter((x) => x.type === 'seal'))
    seals.set(e.invoice!, (seals.get(e.invoice!) ?? 0) + 1);
  assert.equal(seals.size, invoices, 'every invoice has a seal entry');
  assert.ok(
    [...seals.values()].every((n) => n === 1),
    'no invoice has two seal entries',
  );
  assert.equal(figures.refusals, 0, 'no refusal entry');
  const chain = await verifyTenantAudit(outboxRoot, tenant);
  assert.equal(chain.ok, true, `the audit chain verifies: ${chain.ok ? '' : chain.reason}`);
  const rows = new Map(manifest.map((r) => [r.file, r]));
  for (const pdf of pdfs) {
    const bytes = await fs.readFile(pdf);
    const checks = await verifySealedPdf(bytes);
    assert.equal(checks.length, 1, `${pdf} carries one seal`);
    assert.ok(checks[0]!.valid && checks[0]!.coversWholeDocument, `${pdf} is a valid seal`);
    assert.ok(rows.has(path.basename(pdf)), `${pdf} has a manifest row`);
  }
  return figures;
}

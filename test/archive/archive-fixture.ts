// Invoices for the archive tests, and a reference search written as plainly as possible (filter and
// sort in memory) that every storage must agree with row for row.
import type { ArchiveQuery, ArchivedInvoice } from '../../src/archive';
import { seededRandom } from '../../src/archive/synthetic-invoices';

export function invoice(
  tenant: string,
  invoiceNumber: string,
  customer: string,
  amount: number,
  issueDate: string | undefined,
  more: Partial<ArchivedInvoice> = {},
): ArchivedInvoice {
  const entry: ArchivedInvoice = {
    tenant,
    invoiceNumber,
    customer,
    amount,
    file: `/srv/outbox/${tenant}/${issueDate ?? 'undated'}/${invoiceNumber}.pdf`,
    sealedSha256: 'a'.repeat(64),
    sourceSha256: 'b'.repeat(64),
    level: 'B-T',
    sealedAt: '2026-11-30T17:00:00.000Z',
    certificateSerial: '01ab',
    timestampAt: '2026-11-30T17:00:01.000Z',
    job: 'nightly',
    runId: 'run-1',
    ...more,
  };
  if (issueDate !== undefined) entry.issueDate = issueDate;
  // An optional field passed as undefined is absent, as it comes back from the archive.
  if (entry.timestampAt === undefined) delete entry.timestampAt;
  return entry;
}

/** A small hand-made set whose answers the tests spell out. */
export const HAND_MADE: ArchivedInvoice[] = [
  invoice('fuji', 'F-001', '株式会社山田商事', 120_000, '2024-01-15'),
  invoice('fuji', 'F-002', 'ＡＢＣ商会', 55_000, '2024-02-01'),
  invoice('fuji', 'F-003', 'abc trading', 980_000, '2024-02-01'),
  invoice('fuji', 'F-004', 'ｶﾌﾞｼｷｶﾞｲｼｬ ｻｸﾗ', 10_000, '2024-03-31'),
  invoice('fuji', 'F-005', '山田工業有限会社', -20_000, '2024-04-01'),
  invoice('fuji', 'F-006', '株式会社山田商事', 300_000, undefined, { timestampAt: undefined, level: 'B-B' }),
  invoice('fuji', 'F-000', '東京物産株式会社', 0, '2024-02-01'),
  invoice('sakura', 'S-001', '株式会社山田商事', 120_000, '2024-01-15'),
  invoice('sakura', 'S-002', 'ＡＢＣ商会', 55_000, '2024-02-01'),
];

const CUSTOMERS = [
  '株式会社山田商事',
  '山田工業有限会社',
  'ＡＢＣ商会',
  'abc trading',
  'ｶﾌﾞｼｷｶﾞｲｼｬ ｻｸﾗ',
  'カブシキガイシャ　ﾌｼﾞ',
  '東京物産株式会社',
  '大阪運輸（株）',
  '合同会社みどり',
  'Ｓａｋｕｒａ Ｓｙｓｔｅｍｓ',
  '50%off商店',
  'under_score',
];

/** `count` invoices over two tenants: random customers, dates (a few undated), amounts (some negative). */
export function randomInvoices(count: number, seed = 7): ArchivedInvoice[] {
  const random = seededRandom(seed);
  const out: ArchivedInvoice[] = [];
  for (let n = 0; n < count; n++) {
    const tenant = random() < 0.7 ? 'fuji' : 'sakura';
    const customer = CUSTOMERS[Math.floor(random() * CUSTOMERS.length)]!;
    const amount = Math.round((random() - 0.1) * 1_000_000);
    const day = Math.floor(random() * 730);
    const date =
      random() < 0.05 ? undefined : new Date(Date.UTC(2023, 0, 1 + day)).toISOString().slice(0, 10);
    // Numbers collide now and then (two sources of one invoice number): the order must still be total.
    const number = `R-${String(Math.floor(random() * count * 0.9)).padStart(5, '0')}`;
    out.push(
      invoice(tenant, number, customer, amount, date, { sourceSha256: n.toString(16).padStart(64, '0') }),
    );
  }
  return out;
}

const fold = (s: string) => s.normalize('NFKC').toLowerCase();

/** The answer every storage must give: in memory, in recording order for ties. */
export function referenceSearch(all: readonly ArchivedInvoice[], q: ArchiveQuery): ArchivedInvoice[] {
  const needle = q.customer === undefined ? '' : fold(q.customer).trim();
  const hits = all
    .map((e, i) => ({ e, i }))
    .filter(({ e }) => e.tenant === q.tenant)
    .filter(
      ({ e }) =>
        q.issueDateFrom === undefined || (e.issueDate !== undefined && e.issueDate >= q.issueDateFrom),
    )
    .filter(
      ({ e }) => q.issueDateTo === undefined || (e.issueDate !== undefined && e.issueDate <= q.issueDateTo),
    )
    .filter(({ e }) => q.amountMin === undefined || e.amount >= q.amountMin)
    .filter(({ e }) => q.amountMax === undefined || e.amount <= q.amountMax)
    .filter(({ e }) => fold(e.customer).includes(needle));
  // Undated first, then issue date, invoice number (binary order), then the order they were recorded.
  hits.sort(
    (a, b) =>
      cmp(a.e.issueDate ?? '', b.e.issueDate ?? '') || cmp(a.e.invoiceNumber, b.e.invoiceNumber) || a.i - b.i,
  );
  return hits.map(({ e }) => e);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

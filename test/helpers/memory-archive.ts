// A tiny in-memory ArchiveIndex for tests of the pages that read the archive (the real SQLite and
// PostgreSQL ones live in src/archive): the same query rules, inclusive ranges, customer by folded part.
import type {
  ArchiveIndex,
  ArchiveQuery,
  ArchiveSearchResult,
  ArchivedInvoice,
} from '../../src/archive/archive-index';

const fold = (s: string) => s.normalize('NFKC').toLowerCase();

export class MemoryArchive implements ArchiveIndex {
  readonly entries: ArchivedInvoice[] = [];

  record(entry: ArchivedInvoice): Promise<void> {
    const i = this.entries.findIndex(
      (e) =>
        e.tenant === entry.tenant &&
        e.invoiceNumber === entry.invoiceNumber &&
        e.sourceSha256 === entry.sourceSha256,
    );
    if (i >= 0) this.entries[i] = entry;
    else this.entries.push(entry);
    return Promise.resolve();
  }

  search(q: ArchiveQuery): Promise<ArchiveSearchResult> {
    const hits = this.entries
      .filter(
        (e) =>
          e.tenant === q.tenant &&
          (q.issueDateFrom === undefined || (e.issueDate !== undefined && e.issueDate >= q.issueDateFrom)) &&
          (q.issueDateTo === undefined || (e.issueDate !== undefined && e.issueDate <= q.issueDateTo)) &&
          (q.amountMin === undefined || e.amount >= q.amountMin) &&
          (q.amountMax === undefined || e.amount <= q.amountMax) &&
          (q.customer === undefined || fold(e.customer).includes(fold(q.customer))),
      )
      .sort(
        (a, b) =>
          (b.issueDate ?? '').localeCompare(a.issueDate ?? '') ||
          a.invoiceNumber.localeCompare(b.invoiceNumber),
      );
    const offset = q.offset ?? 0;
    return Promise.resolve({ rows: hits.slice(offset, offset + (q.limit ?? 100)), total: hits.length });
  }

  find(tenant: string, invoiceNumber: string): Promise<ArchivedInvoice[]> {
    return Promise.resolve(
      this.entries
        .filter((e) => e.tenant === tenant && e.invoiceNumber === invoiceNumber)
        .sort((a, b) => b.sealedAt.localeCompare(a.sealedAt)),
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

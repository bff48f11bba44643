// The archive as the worker, the dashboard and `sealer archive` see it: one ArchiveIndex that sends each
// tenant's rows to that tenant's storage. By default that is an SQLite file beside the tenant's outbox
// (<outbox>/.archive/index.sqlite, one per outbox root); SEALER_ARCHIVE names one storage for every
// tenant instead: an SQLite file, or a postgres:// URL when several hosts share the archive.
import type { ArchiveIndex, ArchiveQuery, ArchiveSearchResult, ArchivedInvoice } from './archive-index';
import { ArchiveError } from './archive-error';
import { defaultArchiveFile, openArchive, type OpenArchiveOptions } from './open-archive';
import { groupBy } from '../common/group-by';

/** Which storage holds a tenant's rows, from the tenants' outbox roots (their job definitions). */
export function archiveSpecs(
  jobs: readonly { tenant: string; outboxRoot: string }[],
  env: NodeJS.ProcessEnv = process.env,
): (tenant: string) => string | undefined {
  const shared = env.SEALER_ARCHIVE?.trim();
  const byTenant = new Map<string, string>();
  for (const j of jobs) if (!byTenant.has(j.tenant)) byTenant.set(j.tenant, defaultArchiveFile(j.outboxRoot));
  return (tenant) => (byTenant.has(tenant) ? shared || byTenant.get(tenant) : undefined);
}

export class TenantArchives implements ArchiveIndex {
  private readonly opened = new Map<string, Promise<ArchiveIndex>>();

  constructor(
    private readonly specFor: (tenant: string) => string | undefined,
    private readonly options: OpenArchiveOptions = {},
  ) {}

  /** The storage of `tenant`'s rows, opened once. */
  forTenant(tenant: string): Promise<ArchiveIndex> {
    const spec = this.specFor(tenant);
    if (spec === undefined) {
      return Promise.reject(new ArchiveError(`no archive for tenant ${tenant}: no job definition names it`));
    }
    let index = this.opened.get(spec);
    if (!index) {
      index = openArchive(spec, this.options);
      // A failed open (a database down) is tried again next time, not kept.
      index.catch(() => this.opened.delete(spec));
      this.opened.set(spec, index);
    }
    return index;
  }

  async record(entry: ArchivedInvoice): Promise<void> {
    await (await this.forTenant(entry.tenant)).record(entry);
  }

  /** One transaction per storage where the storage has one (SQLite, PostgreSQL both do). */
  async recordMany(entries: readonly ArchivedInvoice[]): Promise<void> {
    const byTenant = groupBy(entries, (e) => e.tenant);
    for (const [tenant, list] of byTenant) {
      const index = await this.forTenant(tenant);
      if (index.recordMany) await index.recordMany(list);
      else for (const e of list) await index.record(e);
    }
  }

  async search(query: ArchiveQuery): Promise<ArchiveSearchResult> {
    return (await this.forTenant(query.tenant)).search(query);
  }

  async find(tenant: string, invoiceNumber: string): Promise<ArchivedInvoice[]> {
    return (await this.forTenant(tenant)).find(tenant, invoiceNumber);
  }

  async close(): Promise<void> {
    const all = [...this.opened.values()];
    this.opened.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.close()));
  }
}

// The settled jobs of a run put in report order, held compactly: a run of hundreds of thousands of
// invoices is sorted by what orders its report (compareReportOrder: invoice number, export line,
// source digest) with about a hundred bytes per job (the invoice number, a 32-byte digest, a few
// numbers) instead of an object and its job ID's text. A job ID is rebuilt from its parts when its
// chunk of the report is made.
import { compareReportOrder, type RunReportOrderKey } from '../outbox';
import type { Outcome } from './run-record';
import { parseSealJobId } from './seal-job';

/** One settled job, as a chunk of the report gets it back. */
export interface SettledKey {
  jobId: string;
  /** the invoice number the report lists */
  invoiceNumber: string;
  line?: number;
  sourceSha256?: string;
  /** from the run's outcome value (absent for a job an older run's settled set names) */
  outcome?: Outcome;
  exportFile?: string;
}

const OUTCOMES: readonly (Outcome | undefined)[] = [undefined, 'sealed', 'alreadySealed', 'failed'];
/** An outcome value naming no outcome of these counts as already sealed (as the report always read it). */
const OTHER_OUTCOME = OUTCOMES.indexOf('alreadySealed');

/** A copy of `s` that holds no larger string alive (V8 may keep a substring as a view of its parent). */
function ownCopy(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}

/** One job of a SettledOrder as compareReportOrder reads it, without making an object per job. */
class OrderView implements RunReportOrderKey {
  private i = 0;
  constructor(private readonly jobs: SettledOrder) {}
  at(i: number): this {
    this.i = i;
    return this;
  }
  get invoiceNumber(): string {
    return this.jobs.invoiceAt(this.i);
  }
  get line(): number | undefined {
    return this.jobs.lineAt(this.i);
  }
  // Read only for two jobs of one invoice and line: made as text then alone.
  get sourceSha256(): string | undefined {
    return this.jobs.sourceAt(this.i);
  }
}

export class SettledOrder {
  private n = 0;
  private invoices: string[] = [];
  /** NaN: no line */
  private lines: Float64Array;
  /** index into OUTCOMES */
  private outcomes: Uint8Array;
  /** index into `names` (+1; 0: none) */
  private exportFiles: Uint32Array;
  /** index into `names` of the job ID's tenant (+1; 0: the job ID is in `odd`) */
  private tenants: Uint32Array;
  /** the job IDs' source digests, 32 bytes each */
  private sources: Buffer;
  /** job IDs not rebuilt from tenant, invoice number and digest (and their digests), by position */
  private readonly odd = new Map<number, string>();
  private readonly oddSources = new Map<number, string>();
  private readonly names: string[] = [];
  private readonly nameIndex = new Map<string, number>();
  private order: Uint32Array | undefined;

  /** `expected`: about how many jobs will be added (more are taken too). */
  constructor(expected: number) {
    const capacity = Math.max(16, expected);
    this.lines = new Float64Array(capacity);
    this.outcomes = new Uint8Array(capacity);
    this.exportFiles = new Uint32Array(capacity);
    this.tenants = new Uint32Array(capacity);
    this.sources = Buffer.alloc(capacity * 32);
  }

  get length(): number {
    return this.n;
  }

  private name(value: string | undefined): number {
    if (value === undefined) return 0;
    let i = this.nameIndex.get(value);
    if (i === undefined) {
      i = this.names.push(value) - 1;
      this.nameIndex.set(value, i);
    }
    return i + 1;
  }

  private grow(): void {
    const capacity = this.lines.length * 2;
    const lines = new Float64Array(capacity);
    lines.set(this.lines);
    this.lines = lines;
    const outcomes = new Uint8Array(capacity);
    outcomes.set(this.outcomes);
    this.outcomes = outcomes;
    const exportFiles = new Uint32Array(capacity);
    exportFiles.set(this.exportFiles);
    this.exportFiles = exportFiles;
    const tenants = new Uint32Array(capacity);
    tenants.set(this.tenants);
    this.tenants = tenants;
    const sources = Buffer.alloc(capacity * 32);
    this.sources.copy(sources);
    this.sources = sources;
  }

  add(key: SettledKey): void {
    if (this.order) throw new Error('SettledOrder: add after sort');
    if (this.n === this.lines.length) this.grow();
    const i = this.n++;
    this.invoices.push(ownCopy(key.invoiceNumber));
    this.lines[i] = key.line ?? NaN;
    const outcome = OUTCOMES.indexOf(key.outcome);
    this.outcomes[i] = outcome < 0 ? OTHER_OUTCOME : outcome;
    this.exportFiles[i] = this.name(key.exportFile);
    const ids = parseSealJobId(key.jobId);
    const rebuilt =
      ids && ids.sourceSha256 === key.sourceSha256 && ids.invoiceNumber === key.invoiceNumber
        ? `${ids.tenant}|${key.invoiceNumber}|${ids.sourceSha256}`
        : undefined;
    if (ids && rebuilt === key.jobId) {
      this.tenants[i] = this.name(ids.tenant);
      this.sources.write(ids.sourceSha256, i * 32, 32, 'hex');
    } else {
      this.tenants[i] = 0;
      this.odd.set(i, key.jobId);
      if (key.sourceSha256 !== undefined) this.oddSources.set(i, key.sourceSha256);
    }
  }

  /** The source digest of the job added i-th. */
  sourceAt(i: number): string | undefined {
    if (this.tenants[i] === 0) return this.oddSources.get(i);
    return this.sources.toString('hex', i * 32, i * 32 + 32);
  }

  /** The line of the job added i-th. */
  lineAt(i: number): number | undefined {
    const line = this.lines[i]!;
    return Number.isNaN(line) ? undefined : line;
  }

  /** The invoice number of the job added i-th. */
  invoiceAt(i: number): string {
    return this.invoices[i]!;
  }

  /** Puts the jobs in report order (compareReportOrder); no job is added after. */
  sort(): void {
    const a = new OrderView(this);
    const b = new OrderView(this);
    const order = new Uint32Array(this.n);
    for (let i = 0; i < this.n; i++) order[i] = i;
    order.sort((i, j) => compareReportOrder(a.at(i), b.at(j)));
    this.order = order;
  }

  /** The jobs at positions [start, end) of the report order. */
  keys(start: number, end: number): SettledKey[] {
    if (!this.order) throw new Error('SettledOrder: keys before sort');
    const out: SettledKey[] = [];
    for (let p = start; p < Math.min(end, this.n); p++) {
      const i = this.order[p]!;
      const invoiceNumber = this.invoices[i]!;
      const sourceSha256 = this.sourceAt(i);
      const tenant = this.tenants[i]!;
      const line = this.lineAt(i);
      const outcome = OUTCOMES[this.outcomes[i]!];
      const exportFile = this.exportFiles[i] === 0 ? undefined : this.names[this.exportFiles[i]! - 1];
      out.push({
        jobId: tenant === 0 ? this.odd.get(i)! : `${this.names[tenant - 1]}|${invoiceNumber}|${sourceSha256}`,
        invoiceNumber,
        ...(line !== undefined && { line }),
        ...(sourceSha256 !== undefined && { sourceSha256 }),
        ...(outcome !== undefined && { outcome }),
        ...(exportFile !== undefined && { exportFile }),
      });
    }
    return out;
  }
}

// Checks a tenant's audit trail and names the first line that is wrong: a line that is not an entry or
// was edited (its hash), an entry removed, inserted or moved (seq and prev against the line before), a
// write cut short (no final newline), and entries cut off the end (HEAD, which the chain cannot show).
import path from 'node:path';
import { AuditError, GENESIS_PREV, parseAuditLine, sha256Hex } from './audit-entry';
import {
  AUDIT_HEAD,
  auditDir,
  listAuditFiles,
  readAuditHead,
  readAuditLines,
  type AuditHead,
} from './audit-files';

export interface AuditFileSummary {
  file: string;
  entries: number;
  firstSeq?: number;
  lastSeq?: number;
}

export type AuditVerifyResult =
  | { ok: true; entries: number; files: AuditFileSummary[]; tenant?: string }
  | {
      ok: false;
      /** the file and 1-based line of the first problem */
      file: string;
      line: number;
      reason: string;
      /** entries and files that checked out before it */
      entries: number;
      files: AuditFileSummary[];
      tenant?: string;
    };

export interface VerifyAuditOptions {
  /**
   * The files start the chain: the first entry must be seq 1 with a prev of 64 zeros. Default true;
   * false to check a later file on its own, whose first seq and prev are then taken as given.
   */
  fromStart?: boolean;
  /** every entry must name this tenant (default: the tenant of the first entry) */
  tenant?: string;
  /** the log must end exactly at this entry (see AuditHead) */
  head?: AuditHead;
}

/** Verifies the chain through `files`, in the order given. */
export async function verifyAuditChain(
  files: string[],
  options: VerifyAuditOptions = {},
): Promise<AuditVerifyResult> {
  const { head } = options;
  let tenant = options.tenant;
  let expectedSeq: number | undefined = options.fromStart === false ? undefined : 1;
  let expectedPrev: string | undefined = options.fromStart === false ? undefined : GENESIS_PREV;
  let entries = 0;
  const summaries: AuditFileSummary[] = [];
  let last: { file: string; line: number; seq: number; hash: string } | undefined;
  const fail = (file: string, line: number, reason: string): AuditVerifyResult => ({
    ok: false,
    file,
    line,
    reason,
    entries,
    files: summaries,
    ...(tenant !== undefined ? { tenant } : {}),
  });

  for (const file of files) {
    const summary: AuditFileSummary = { file, entries: 0 };
    let lines = 0;
    try {
      for await (const line of readAuditLines(file)) {
        lines = line.number;
        const at = (reason: string) => fail(file, line.number, reason);
        if (!line.terminated) return at('truncated final line (no newline at the end of the file)');
        const parsed = parseAuditLine(line.bytes);
        if ('reason' in parsed) return at(parsed.reason);
        const r = parsed.record;
        if (tenant === undefined) tenant = r.tenant;
        else if (r.tenant !== tenant) return at(`entry of tenant ${r.tenant} in the log of tenant ${tenant}`);
        if (expectedSeq !== undefined && r.seq !== expectedSeq) {
          return at(
            `seq ${r.seq} where ${expectedSeq} was expected (an entry was removed, inserted or moved)`,
          );
        }
        if (expectedPrev !== undefined && r.prev !== expectedPrev) {
          return at('prev does not match the line before (an entry was changed, removed, inserted or moved)');
        }
        if (head && r.seq > head.seq) {
          return at(`entry beyond HEAD (seq ${head.seq}): written without the lock, or forged`);
        }
        expectedSeq = r.seq + 1;
        expectedPrev = sha256Hex(line.bytes);
        entries++;
        summary.entries++;
        summary.firstSeq ??= r.seq;
        summary.lastSeq = r.seq;
        last = { file, line: line.number, seq: r.seq, hash: r.hash };
      }
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new AuditError(`cannot read audit file ${file}: ${why}`, { cause: err });
    }
    summaries.push(summary);
    if (file === files.at(-1) && head && (last?.seq ?? 0) < head.seq) {
      return fail(
        file,
        lines + 1,
        `log ends at seq ${last?.seq ?? 0} but HEAD records seq ${head.seq} (entries removed from the end)`,
      );
    }
  }
  if (head && last && last.hash !== head.hash) {
    return fail(last.file, last.line, 'last entry differs from HEAD (rewritten with a recomputed hash)');
  }
  return { ok: true, entries, files: summaries, ...(tenant !== undefined ? { tenant } : {}) };
}

/**
 * Verifies all of a tenant's audit files from the first entry, and that the log ends where HEAD says.
 * No files and no HEAD is an intact, empty log.
 */
export async function verifyTenantAudit(outboxRoot: string, tenant: string): Promise<AuditVerifyResult> {
  const dir = auditDir(outboxRoot, tenant);
  const headFile = path.join(dir, AUDIT_HEAD);
  const files = await listAuditFiles(dir);
  let head: AuditHead | undefined;
  try {
    head = await readAuditHead(dir);
  } catch (err) {
    return {
      ok: false,
      file: headFile,
      line: 1,
      reason: (err as Error).message,
      entries: 0,
      files: [],
      tenant,
    };
  }
  if (!head) {
    if (files.length === 0) return { ok: true, entries: 0, files: [], tenant };
    return {
      ok: false,
      file: headFile,
      line: 1,
      reason: 'HEAD is missing: cannot tell whether entries were removed from the end',
      entries: 0,
      files: [],
      tenant,
    };
  }
  if (files.length === 0) {
    return {
      ok: false,
      file: headFile,
      line: 1,
      reason: `HEAD records seq ${head.seq} but there are no log files`,
      entries: 0,
      files: [],
      tenant,
    };
  }
  return verifyAuditChain(files, { tenant, head });
}

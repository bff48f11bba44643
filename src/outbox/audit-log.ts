// A tenant's append-only, hash-chained audit trail: authorisations, seals, refusals, approvals, factor
// custody. One JSON line per entry in <outbox>/<tenant>/audit/YYYY-MM.jsonl (UTC month), each naming
// the SHA-256 of the line before it, across month files. Many worker processes append at once: each
// holds a lock file in the audit folder while it reads the chain's end and writes the next lines.
// Within a process, appends to a folder are group-committed: those that arrive while a group is being
// written wait, and the next lock cycle writes them all (one write, one fsync, one HEAD update).
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  AuditError,
  encodeAuditLine,
  GENESIS_PREV,
  parseAuditLine,
  sha256Hex,
  type AuditEntryInput,
  type AuditRecord,
} from './audit-entry';
import {
  auditDir,
  listAuditFiles,
  readAuditHead,
  readAuditLastLines,
  readAuditLines,
  readAuditTail,
  writeAuditHead,
  type AuditHead,
} from './audit-files';
import { FileLock, type FileLockOptions } from './audit-lock';
import { appendFileDurably } from './atomic-write';

export const AUDIT_LOCK = '.lock';

/**
 * The most entries one lock cycle writes. It also bounds how many lines past HEAD a crash can leave (a
 * group's lines are synced before HEAD is updated), which the next append accepts as committed.
 */
const MAX_GROUP = 500;

export interface AuditLogOptions {
  /** lock waiting and stale takeover (defaults: takeover after 10 s untouched, give up after 60 s) */
  lock?: FileLockOptions;
  /** the clock entries are stamped with; tests use it to write across months. Default: now */
  now?: () => Date;
}

/** Where the next entry links to: its seq and prev, and the file the chain currently ends in. */
interface NextLink {
  seq: number;
  prev: string;
  lastFile?: string;
}

/** The tail of a chain as read from its last line. */
interface TailLink {
  seq: number;
  hash: string;
  prev: string;
  lineSha256: string;
}

/** An append waiting for its folder's next lock cycle. */
interface Pending {
  entry: AuditEntryInput;
  tenant: string;
  options: AuditLogOptions;
  resolve: (record: AuditRecord) => void;
  reject: (err: unknown) => void;
}

/** What one lock cycle writes: the first `taken` appends of the queue, less those refused. */
interface Group {
  taken: number;
  file: string;
  lines: string[];
  members: Pending[];
  refused: { item: Pending; err: unknown }[];
  /** SHA-256 of the last line: HEAD's lineSha256 */
  lastLineSha256: string;
}

// The appends of this process waiting per audit folder, in call order. A folder has a queue while its
// drain runs, so appends queue on it instead of polling the lock file against each other.
const queues = new Map<string, Pending[]>();

export class AuditLog {
  private constructor(
    /** the tenant's audit folder */
    readonly dir: string,
    readonly tenant: string,
    private readonly options: AuditLogOptions,
  ) {}

  static forTenant(outboxRoot: string, tenant: string, options: AuditLogOptions = {}): AuditLog {
    return new AuditLog(auditDir(outboxRoot, tenant), tenant, options);
  }

  /**
   * Appends one entry and returns it as written, once it is on disk (fsync). Callers pass fingerprints
   * of secrets only (sadFingerprint()); a SAD, token, PIN or key must never be part of an entry.
   */
  async append(entry: AuditEntryInput): Promise<AuditRecord> {
    const [record] = await this.appendMany([entry]);
    return record!;
  }

  /**
   * Appends entries in the order given and returns them as written, once all are on disk. If one is not
   * a valid entry, none is written. They follow one another in the chain unless a lock cycle ends among
   * them (500 entries, a month change), where another process may append in between.
   */
  appendMany(entries: readonly AuditEntryInput[]): Promise<AuditRecord[]> {
    try {
      // Refused at once rather than under the lock, so a bad entry never holds up or splits a group.
      for (const entry of entries) {
        encodeAuditLine(entry, {
          seq: 1,
          time: new Date(0).toISOString(),
          tenant: this.tenant,
          prev: GENESIS_PREV,
        });
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const items: Pending[] = [];
    const records = entries.map(
      (entry) =>
        new Promise<AuditRecord>((resolve, reject) => {
          items.push({ entry, tenant: this.tenant, options: this.options, resolve, reject });
        }),
    );
    enqueue(this.dir, items);
    return Promise.all(records);
  }

  /**
   * Whether the trail already has a seal entry for this invoice and sealed file, looking through the
   * newest `months` month files (a repair completes a delivery of days ago, not of years ago).
   */
  async hasSeal(invoice: string, sealedSha256: string, months = 3): Promise<boolean> {
    const files = (await listAuditFiles(this.dir)).slice(-months).reverse();
    const needle = Buffer.from(sealedSha256);
    for (const file of files) {
      for await (const line of readAuditLines(file)) {
        // Cheap test first; most lines are other seals.
        if (!line.terminated || line.bytes.indexOf(needle) === -1) continue;
        const parsed = parseAuditLine(line.bytes);
        if (!('record' in parsed)) continue;
        const r = parsed.record;
        if (r.type === 'seal' && r.invoice === invoice && r.sealedSha256 === sealedSha256) return true;
      }
    }
    return false;
  }

  /** Whether the trail has a renewal entry that made this invoice's file `newSealedSha256` (same window). */
  async hasRenewal(invoice: string, newSealedSha256: string, months = 3): Promise<boolean> {
    const files = (await listAuditFiles(this.dir)).slice(-months).reverse();
    const needle = Buffer.from(newSealedSha256);
    for (const file of files) {
      for await (const line of readAuditLines(file)) {
        if (!line.terminated || line.bytes.indexOf(needle) === -1) continue;
        const parsed = parseAuditLine(line.bytes);
        if (!('record' in parsed)) continue;
        const r = parsed.record;
        if (r.type === 'renewal' && r.invoice === invoice && r.newSealedSha256 === newSealedSha256)
          return true;
      }
    }
    return false;
  }
}

function enqueue(dir: string, items: Pending[]): void {
  if (items.length === 0) return;
  const queue = queues.get(dir);
  if (queue) {
    queue.push(...items);
    return;
  }
  const fresh = [...items];
  queues.set(dir, fresh);
  // drain settles every append itself and never rejects; the catch only keeps that true.
  drain(dir, fresh).catch(() => undefined);
}

/** Writes a folder's queue group by group until it is empty, then forgets it (in the same tick). */
async function drain(dir: string, queue: Pending[]): Promise<void> {
  while (queue.length > 0) {
    try {
      await commitGroup(dir, queue);
    } catch (err) {
      // commitGroup settles its appends itself; this is only so that nothing waits forever.
      for (const item of queue.splice(0, groupable(queue))) item.reject(err);
    }
  }
  queues.delete(dir);
}

/** Whether two appends may share a lock cycle: same tenant, clock and lock settings. */
function sameGroup(a: Pending, b: Pending): boolean {
  return (
    a.tenant === b.tenant &&
    a.options.now === b.options.now &&
    a.options.lock?.staleMs === b.options.lock?.staleMs &&
    a.options.lock?.timeoutMs === b.options.lock?.timeoutMs
  );
}

/** How many appends at the front of the queue may go into the next group. */
function groupable(queue: Pending[]): number {
  let n = 0;
  while (n < queue.length && n < MAX_GROUP && sameGroup(queue[0]!, queue[n]!)) n++;
  return n;
}

/**
 * One lock cycle: writes the appends at the front of the queue that fit one group, takes them off it,
 * and settles their promises. The lines are written and synced before HEAD, as for a single entry.
 */
async function commitGroup(dir: string, queue: Pending[]): Promise<void> {
  const { tenant, options } = queue[0]!;
  let group: Group | undefined;
  try {
    await fs.mkdir(dir, { recursive: true });
    for (let attempt = 1; ; attempt++) {
      const lock = await FileLock.acquire(path.join(dir, AUDIT_LOCK), options.lock);
      try {
        const next = await nextLink(dir, tenant);
        const built = buildGroup(queue, next, tenant, options);
        // Only a process stalled past the stale limit loses its lock; it must not write on a chain end
        // another process may have moved since. Start over instead.
        if (!(await lock.stillHeld())) {
          if (attempt < 3) continue;
          throw new AuditError(`lost the audit lock of tenant ${tenant} three times in a row`);
        }
        group = built;
        queue.splice(0, group.taken);
        for (const { item, err } of group.refused) item.reject(err);
        if (group.lines.length > 0) {
          const file = path.join(dir, group.file);
          await appendFileDurably(file, group.lines.map((line) => line + '\n').join(''));
          const last = JSON.parse(group.lines.at(-1)!) as AuditRecord;
          await writeAuditHead(dir, {
            seq: last.seq,
            hash: last.hash,
            lineSha256: group.lastLineSha256,
            file: group.file,
          });
        }
        break;
      } finally {
        await lock.release();
      }
    }
  } catch (err) {
    const failed = group ? group.members : queue.splice(0, groupable(queue));
    for (const item of failed) item.reject(err);
    return;
  }
  group.members.forEach((item, i) => item.resolve(JSON.parse(group.lines[i]!) as AuditRecord));
}

/**
 * Encodes the appends at the front of the queue that go into one group, each stamped by the clock in
 * turn: up to MAX_GROUP of them with the same settings, ending before the first that falls in a later
 * month file (that one starts the next group). An entry that cannot be encoded is refused on its own.
 */
function buildGroup(queue: Pending[], next: NextLink, tenant: string, options: AuditLogOptions): Group {
  const clock = options.now ?? (() => new Date());
  const count = groupable(queue);
  const group: Group = { taken: 0, file: '', lines: [], members: [], refused: [], lastLineSha256: '' };
  let { seq, prev } = next;
  for (; group.taken < count; group.taken++) {
    const item = queue[group.taken]!;
    const time = clock();
    const file = monthFile(time, group.lines.length > 0 ? group.file : next.lastFile);
    if (group.lines.length > 0 && file !== group.file) break;
    let line: string;
    try {
      line = encodeAuditLine(item.entry, { seq, time: time.toISOString(), tenant, prev });
    } catch (err) {
      group.refused.push({ item, err });
      continue;
    }
    group.file = file;
    group.lines.push(line);
    group.members.push(item);
    seq++;
    prev = sha256Hex(line);
  }
  group.lastLineSha256 = prev;
  return group;
}

/**
 * Reads where the chain ends (under the lock). The log's last line and HEAD normally agree; when they
 * do not, the log was cut or changed, and the next entry links to HEAD so the gap stays visible to the
 * verifier rather than being papered over by a new, valid-looking chain end.
 */
async function nextLink(dir: string, tenant: string): Promise<NextLink> {
  const files = await listAuditFiles(dir);
  const head = await readAuditHead(dir);
  const lastFile = files.at(-1);
  let tail: TailLink | undefined;
  let badTail: string | undefined;
  let cutLineAt: number | undefined;
  for (let i = files.length - 1; i >= 0; i--) {
    const t = await readAuditTail(files[i]!);
    if (i === files.length - 1 && t.completeEnd < t.size) cutLineAt = t.completeEnd;
    if (!t.lastLine) continue;
    const parsed = parseAuditLine(t.lastLine);
    if ('reason' in parsed) badTail = `${files[i]}: last line: ${parsed.reason}`;
    else tail = { ...parsed.record, lineSha256: sha256Hex(t.lastLine) };
    break;
  }
  const consistent = head
    ? tail !== undefined &&
      ((tail.seq === head.seq && tail.hash === head.hash) ||
        // the previous group wrote its lines but not HEAD
        (await continuesHead(files, head, tail.seq)))
    : tail === undefined && badTail === undefined;
  if (cutLineAt !== undefined) await repairCutLine(lastFile!, cutLineAt, consistent);
  const lastName = lastFile ? path.basename(lastFile) : undefined;
  if (head && !consistent) return { seq: head.seq + 1, prev: head.lineSha256, lastFile: lastName };
  if (tail) return { seq: tail.seq + 1, prev: tail.lineSha256, lastFile: lastName };
  if (badTail) {
    throw new AuditError(`cannot continue the audit chain of tenant ${tenant}: ${badTail}, and no HEAD`);
  }
  return { seq: 1, prev: GENESIS_PREV, lastFile: lastName };
}

/**
 * Whether the log's last complete lines, up to seq `tailSeq`, are one group written after HEAD's entry
 * whose HEAD update was lost (a crash between syncing the lines and replacing HEAD): at most MAX_GROUP
 * lines, the first linking to HEAD's line, each the next seq and linking to the line before it.
 */
async function continuesHead(files: string[], head: AuditHead, tailSeq: number): Promise<boolean> {
  const count = tailSeq - head.seq;
  if (count < 1 || count > MAX_GROUP) return false;
  let lines: Buffer[] = [];
  for (let i = files.length - 1; i >= 0 && lines.length < count; i--) {
    lines = [...(await readAuditLastLines(files[i]!, count - lines.length)), ...lines];
  }
  if (lines.length < count) return false;
  let expectedSeq = head.seq + 1;
  let expectedPrev = head.lineSha256;
  for (const line of lines) {
    const parsed = parseAuditLine(line);
    if ('reason' in parsed || parsed.record.seq !== expectedSeq || parsed.record.prev !== expectedPrev) {
      return false;
    }
    expectedSeq++;
    expectedPrev = sha256Hex(line);
  }
  return true;
}

/** The UTC month's file, but never one that sorts before the chain's last file (a clock set back). */
function monthFile(time: Date, lastFile: string | undefined): string {
  const name = `${time.toISOString().slice(0, 7)}.jsonl`;
  return lastFile && lastFile > name ? lastFile : name;
}

/**
 * A final line without its newline is a write cut short by a crash. If the rest of the log agrees with
 * HEAD, that line was never committed (HEAD is written after the line is synced): drop it. Otherwise
 * keep it, terminated, so the verifier still reports it.
 */
async function repairCutLine(
  file: string,
  completeEnd: number,
  committedEndsBeforeIt: boolean,
): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    if (committedEndsBeforeIt) await handle.truncate(completeEnd);
    else await handle.write('\n', (await handle.stat()).size);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

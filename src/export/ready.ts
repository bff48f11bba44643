// Knowing when an export is complete: a core system writes its export over minutes, and a file read
// half-written would be taken as a short night. A job says how it knows: the file has been quiet
// (size and mtime unchanged) for a while, or the core system drops a marker beside it when done.
import fs from 'node:fs/promises';
import { ExportError } from './export-error';

/** A job's rule (job definition `export.ready`). */
export type ExportReadyRule = { quietSec: number } | { marker: string };

/** What the export looked like when it was judged complete: compared again after the read. */
export interface ExportSnapshot {
  size: number;
  mtimeMs: number;
}

export type ExportReadiness =
  | {
      ready: true;
      snapshot: ExportSnapshot;
      /** under a marker rule: the marker, and when it was written (what it vouches for is older) */
      markerFile?: string;
      markedAtMs?: number;
    }
  | { ready: false; reason: string };

/** The marker of `file` under `rule` (`invoices.csv` → `invoices.csv.done`), if the rule uses one. */
export function markerFileOf(file: string, rule: ExportReadyRule): string | undefined {
  return 'marker' in rule ? `${file}${rule.marker}` : undefined;
}

async function snapshotOf(file: string): Promise<ExportSnapshot> {
  try {
    const st = await fs.stat(file);
    return { size: st.size, mtimeMs: st.mtimeMs };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ExportError(`cannot read export ${file}${code ? ` (${code})` : ''}`, { file, cause: err });
  }
}

export function sameSnapshot(a: ExportSnapshot, b: ExportSnapshot): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/**
 * Is `file` complete by `rule` at `now` (the producer's clock, injected in tests)? Quiet: its mtime is
 * at least quietSec before now, so nothing has written to it for that long. Marker: the marker exists
 * and is not older than the export (a marker left from an earlier export does not vouch for a new one).
 * Throws ExportError only if the export itself cannot be read.
 */
export async function exportReadiness(
  file: string,
  rule: ExportReadyRule,
  now: Date,
): Promise<ExportReadiness> {
  const snapshot = await snapshotOf(file);
  if ('quietSec' in rule) {
    const ageMs = now.getTime() - snapshot.mtimeMs;
    if (ageMs < rule.quietSec * 1000) {
      const when = new Date(snapshot.mtimeMs).toISOString();
      return {
        ready: false,
        reason:
          ageMs < 0
            ? `modified at ${when}, after the run's time ${now.toISOString()} (is the share's clock ahead?)`
            : `modified at ${when}, ${Math.floor(ageMs / 1000)} s before the run: not yet quiet for ${rule.quietSec} s`,
      };
    }
    return { ready: true, snapshot };
  }
  const markerFile = `${file}${rule.marker}`;
  let marker;
  try {
    marker = await fs.stat(markerFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return { ready: false, reason: `no marker ${markerFile} yet: the export is not marked complete` };
    }
    throw new ExportError(`cannot read the marker ${markerFile} of export ${file}`, { file, cause: err });
  }
  if (marker.mtimeMs < snapshot.mtimeMs) {
    return {
      ready: false,
      reason: `marker ${markerFile} is older than the export: the export changed after it was marked complete`,
    };
  }
  return { ready: true, snapshot, markerFile, markedAtMs: marker.mtimeMs };
}

/** The export as it is now, to compare with what was judged complete (a change means a writer is at it). */
export function exportSnapshot(file: string): Promise<ExportSnapshot> {
  return snapshotOf(file);
}

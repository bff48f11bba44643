// Japan Standard Time for people: finance reads seal times in JST. Japan has kept UTC+9 without
// daylight saving since 1951, so a fixed offset is exact (no time-zone database needed).
const JST_OFFSET_MS = 9 * 3600 * 1000;

/** `2026-12-01T02:03:04.005+09:00` for an instant (a Date or an ISO string with its zone). */
export function toJst(instant: Date | string): string {
  const ms = (typeof instant === 'string' ? new Date(instant) : instant).getTime();
  if (Number.isNaN(ms)) throw new RangeError(`not a time: ${String(instant)}`);
  return new Date(ms + JST_OFFSET_MS).toISOString().replace(/Z$/, '+09:00');
}

/** `2026-11-30T17:03:04.005Z` for the same instant. */
export function toUtc(instant: Date | string): string {
  const ms = (typeof instant === 'string' ? new Date(instant) : instant).getTime();
  if (Number.isNaN(ms)) throw new RangeError(`not a time: ${String(instant)}`);
  return new Date(ms).toISOString();
}

// Run identity from the clock, in the job's time zone: the run date names the outbox folder.
function parts(now: Date, timeZone: string): Record<string, string> {
  const fmt = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  return Object.fromEntries(fmt.formatToParts(now).map((p) => [p.type, p.value]));
}

export function runDate(now: Date, timeZone: string): string {
  const p = parts(now, timeZone);
  return `${p.year}-${p.month}-${p.day}`;
}

export function runId(jobName: string, now: Date, timeZone: string): string {
  const p = parts(now, timeZone);
  return `${jobName}-${p.year}${p.month}${p.day}-${p.hour}${p.minute}${p.second}-${now.getMilliseconds().toString().padStart(3, '0')}`;
}

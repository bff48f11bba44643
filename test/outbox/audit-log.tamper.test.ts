// Each way of tampering with an audit trail is caught, and the verifier names the first line that no
// longer fits. A forger who recomputes hashes can make the lines they touch consistent in themselves, so
// the line named is then the first one the forgery breaks (the next line, or HEAD at the end).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { AuditLog, verifyTenantAudit } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
const LOG = '2026-11.jsonl';

/** A log of six seal entries for tenant fuji; returns its root and the file's lines. */
async function sixEntries(): Promise<{ root: string; file: string; lines: string[] }> {
  const root = await tempDir();
  const log = AuditLog.forTenant(root, 'fuji', { now: () => new Date('2026-11-24T17:00:00.000Z') });
  for (let i = 1; i <= 6; i++) {
    await log.append({
      type: 'seal',
      invoice: `INV-${i}`,
      credentialId: 'fuji-eseal-ec',
      sourceSha256: sha256(`source ${i}`),
      sealedSha256: sha256(`sealed ${i}`),
      certificateSerial: '0a1b2c',
      file: `2026-11-24/INV-${i}.pdf`,
    });
  }
  const file = path.join(root, 'fuji', 'audit', LOG);
  return { root, file, lines: (await fs.readFile(file, 'utf8')).split('\n').slice(0, -1) };
}

/** The line as a forger with the format in hand would write it: fields changed, hash recomputed. */
function forge(line: string, change: Record<string, unknown>): string {
  const { hash: _hash, ...body } = { ...(JSON.parse(line) as Record<string, unknown>), ...change };
  const text = JSON.stringify(body);
  return `${text.slice(0, -1)},"hash":"${sha256(text)}"}`;
}

async function expectBad(
  tamper: (lines: string[]) => string[] | string,
  line: number,
  reason: RegExp,
  file = LOG,
): Promise<void> {
  const log = await sixEntries();
  assert.equal((await verifyTenantAudit(log.root, 'fuji')).ok, true);
  const changed = tamper([...log.lines]);
  await fs.writeFile(log.file, typeof changed === 'string' ? changed : changed.map((l) => l + '\n').join(''));
  const result = await verifyTenantAudit(log.root, 'fuji');
  assert.equal(result.ok, false, 'tampering went unnoticed');
  if (result.ok) return;
  assert.deepEqual([path.basename(result.file), result.line], [file, line], result.reason);
  assert.match(result.reason, reason);
}

test('an edited field breaks that line’s hash', { timeout: TEST_TIMEOUT_MS }, async () => {
  await expectBad(
    (l) => [...l.slice(0, 2), l[2]!.replace('INV-3', 'INV-9'), ...l.slice(3)],
    3,
    /hash mismatch/,
  );
});

test(
  'an edited entry with a recomputed hash breaks the next line’s prev',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await expectBad(
      (l) => [...l.slice(0, 2), forge(l[2]!, { invoice: 'INV-9' }), ...l.slice(3)],
      4,
      /prev does not match/,
    );
  },
);

test(
  'a removed middle line leaves a seq gap at the line that follows',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await expectBad((l) => [...l.slice(0, 2), ...l.slice(3)], 3, /seq 4 where 3 was expected/);
  },
);

test('a removed last line is caught by HEAD', { timeout: TEST_TIMEOUT_MS }, async () => {
  await expectBad((l) => l.slice(0, 5), 6, /ends at seq 5 but HEAD records seq 6/);
});

test(
  'a forged line inserted with a consistent seq, prev and hash breaks the line after it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await expectBad(
      (l) => [
        ...l.slice(0, 3),
        forge(l[2]!, { seq: 4, invoice: 'INV-X', prev: sha256(l[2]!) }),
        ...l.slice(3),
      ],
      5,
      /seq 4 where 5 was expected/,
    );
  },
);

test('a forged line appended at the end is caught by HEAD', { timeout: TEST_TIMEOUT_MS }, async () => {
  await expectBad(
    (l) => [...l, forge(l[5]!, { seq: 7, invoice: 'INV-X', prev: sha256(l[5]!) })],
    7,
    /beyond HEAD/,
  );
});

test('two swapped lines are caught at the first of them', { timeout: TEST_TIMEOUT_MS }, async () => {
  await expectBad((l) => [l[0]!, l[2]!, l[1]!, ...l.slice(3)], 2, /seq 3 where 2 was expected/);
});

test('a garbage line is named', { timeout: TEST_TIMEOUT_MS }, async () => {
  await expectBad((l) => [...l.slice(0, 3), 'rm -rf / # not an entry', ...l.slice(3)], 4, /not JSON/);
});

test('a reformatted line (same values, different bytes) is named', { timeout: TEST_TIMEOUT_MS }, async () => {
  await expectBad(
    (l) => [...l.slice(0, 1), l[1]!.replace('"seq":2,', '"seq": 2,'), ...l.slice(2)],
    2,
    /form/,
  );
});

test('a truncated final line is named', { timeout: TEST_TIMEOUT_MS }, async () => {
  await expectBad((l) => l.slice(0, 5).join('\n') + '\n' + l[5]!.slice(0, 40), 6, /truncated final line/);
});

test(
  'a deleted HEAD is reported, since a cut-off end could not be seen without it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const log = await sixEntries();
    await fs.unlink(path.join(log.root, 'fuji', 'audit', 'HEAD'));
    const result = await verifyTenantAudit(log.root, 'fuji');
    assert.equal(result.ok, false);
    assert.match(
      !result.ok ? `${path.basename(result.file)}: ${result.reason}` : '',
      /^HEAD: HEAD is missing/,
    );
  },
);

test(
  'a removed line at the end of an earlier month file is caught at the start of the next',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    let now = new Date('2026-10-31T23:59:59.000Z');
    const log = AuditLog.forTenant(root, 'fuji', { now: () => now });
    await log.append({ type: 'refusal', reason: 'first' });
    await log.append({ type: 'refusal', reason: 'second' });
    now = new Date('2026-11-01T00:00:00.000Z');
    await log.append({ type: 'refusal', reason: 'third' });
    const october = path.join(root, 'fuji', 'audit', '2026-10.jsonl');
    const kept = (await fs.readFile(october, 'utf8')).split('\n')[0]!;
    await fs.writeFile(october, kept + '\n');
    const result = await verifyTenantAudit(root, 'fuji');
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.deepEqual([path.basename(result.file), result.line], ['2026-11.jsonl', 1]);
    assert.match(result.reason, /seq 3 where 2 was expected/);
  },
);

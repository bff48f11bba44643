// What a credential's next authorisation should cover while an export is still being read: the invoices
// queued and not settled, plus the rows of the export not read yet, so the night's first SAD covers the
// export and not only the first chunk (one authorisation per TOTP step: a SAD of one chunk idles the
// night until the next step). Once the file is read, or the run produced, only what is queued counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addRunCounts, expectRows, pendingInvoices } from '../../src/queue/run-record';
import { testRedis } from '../helpers/test-redis';

const T = { timeout: 60_000 };

test('rows not read yet count while the run is produced, and only then', T, async () => {
  const { redis, prefix } = await testRedis();
  const runId = 'fuji-nightly-20261202-010000-000';
  await addRunCounts(
    redis,
    prefix,
    runId,
    { enqueued: 5, duplicates: 1 },
    { job: 'fuji-nightly', state: 'producing' },
  );
  assert.equal(await pendingInvoices(redis, prefix, ['fuji-nightly']), 5);

  await expectRows(redis, prefix, runId, 1000); // a second file of about 1,000 rows
  assert.equal(await pendingInvoices(redis, prefix, ['fuji-nightly']), 5 + 1000);
  // 200 rows of it read: 150 queued, 50 recognised as duplicates; 20 of the queued sealed.
  await addRunCounts(redis, prefix, runId, { enqueued: 150, duplicates: 50, sealed: 20 });
  assert.equal(await pendingInvoices(redis, prefix, ['fuji-nightly']), 5 + 150 - 20 + 800);

  await expectRows(redis, prefix, runId, 0); // the file is read
  assert.equal(await pendingInvoices(redis, prefix, ['fuji-nightly']), 135);

  await expectRows(redis, prefix, runId, 1000);
  await addRunCounts(redis, prefix, runId, {}, { state: 'produced' });
  assert.equal(
    await pendingInvoices(redis, prefix, ['fuji-nightly']),
    135,
    'a produced run expects nothing more',
  );
  assert.equal(
    await pendingInvoices(redis, prefix, ['sakura-nightly']),
    0,
    "another job's runs are not counted",
  );
});

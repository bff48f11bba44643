// Run outcomes are recorded by the script's SHA-1; a server that does not have the script (restarted,
// SCRIPT FLUSH) gets its text once, and every outcome is still counted exactly once. On a redis-server
// of this test's own, since SCRIPT FLUSH would reach every client of the shared one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectRedis } from '../../src/common/redis';
import { readRun, recordEachOutcome, recordOutcome } from '../../src/queue/run-record';
import { privateRedis } from '../helpers/private-redis';
import { tempDir } from '../helpers/temp-dir';

const T = { timeout: 60_000 };
const prefix = 'sealer-test-outcomes-by-sha';
const runId = 'acme-nightly-20261202-020000-000';

test('outcomes are counted once each, with the script flushed before and between calls', T, async () => {
  const server = await privateRedis(await tempDir());
  const redis = connectRedis(server.url);
  try {
    await redis.script('FLUSH');
    const first = await recordEachOutcome(redis, prefix, runId, [
      { jobId: 'a', outcome: 'sealed' },
      { jobId: 'b', outcome: 'sealed' },
      {
        jobId: 'c',
        outcome: 'failed',
        failure: { invoice: 'C', line: 4, reason: 'no PDF', kind: 'unsealable' },
      },
    ]);
    assert.deepEqual(first, [true, true, true], 'sent as text after NOSCRIPT, and counted');
    // Loaded now: the same outcomes again are recognised as counted.
    assert.deepEqual(
      await recordEachOutcome(redis, prefix, runId, [
        { jobId: 'a', outcome: 'sealed' },
        { jobId: 'c', outcome: 'failed' },
      ]),
      [false, false],
    );
    await redis.script('FLUSH');
    assert.deepEqual(
      await recordEachOutcome(redis, prefix, runId, [
        { jobId: 'b', outcome: 'sealed' },
        { jobId: 'd', outcome: 'sealed' },
      ]),
      [false, true],
    );
    assert.equal(await recordOutcome(redis, prefix, runId, 'd', 'sealed'), false);
    const counts = await readRun(redis, prefix, runId);
    assert.equal(counts.sealed, 3);
    assert.equal(counts.failed, 1);
  } finally {
    redis.disconnect();
  }
});

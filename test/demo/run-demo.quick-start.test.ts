// The quick start's `npm run demo`, run on a copy of the project's fixtures and job definitions: both
// custody models, every good invoice sealed, audit chains intact, and a second run works as well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { runDemo } from '../../src/demo/run-demo';
import { connectRedis, deleteKeysByPrefix } from '../../src/common/redis';
import { verifyTenantAudit } from '../../src/outbox';
import { sealerInProcess } from '../helpers/sealer-in-process';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const ROOT = path.join(__dirname, '..', '..', '..');

test(
  'the demo seals the sample exports for an approving and a delegating tenant, twice',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const home = await tempDir();
    await fs.cp(path.join(ROOT, 'fixtures'), path.join(home, 'fixtures'), { recursive: true });
    await fs.cp(path.join(ROOT, 'jobs'), path.join(home, 'jobs'), { recursive: true });
    const prefix = `sealer-test-demo-${crypto.randomBytes(4).toString('hex')}`;
    const redis = connectRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    try {
      // Another tenant's state under the same prefix: the demo clears only its own tenants' keys.
      await redis.hset(`${prefix}:run:other-nightly-20261201-010000-000`, 'tenant', 'other');
      await redis.set(`${prefix}:seal.other:meta`, 'x');
      // ...and a job whose name starts with a demo job's (fuji-nightly-eu is not fuji-nightly).
      await redis.hset(`${prefix}:run:fuji-nightly-eu-20261201-010000-000`, 'tenant', 'fuji-eu');
      let lastRuns: string[] = [];
      for (const round of [1, 2]) {
        const lines: string[] = [];
        const night = await runDemo({ home, concurrency: 32, prefix, out: (l) => lines.push(l) });
        // The summary names files that exist: each manifest, and each run's report and what it holds.
        const named = lines.flatMap((l) => /^\s+(?:manifest|run report):\s+(\S+)/.exec(l)?.slice(1) ?? []);
        assert.ok(named.length >= 2 * night.runs.length, lines.join('\n'));
        for (const p of named) await fs.access(path.join(home, p));
        for (const p of named.filter((n) => n.endsWith('/'))) {
          const summary = JSON.parse(await fs.readFile(path.join(home, p, 'summary.json'), 'utf8')) as {
            files: Record<string, string>;
          };
          for (const f of Object.values(summary.files)) await fs.access(path.join(home, p, f));
        }
        const sealed = night.runs.reduce((n, r) => n + r.counts.sealed, 0);
        const rejected = night.runs.reduce((n, r) => n + r.counts.rejected, 0);
        assert.deepEqual({ round, sealed, rejected }, { round, sealed: 104, rejected: 6 });
        // fuji's invoice data: 40 rendered and sealed, 3 bad invoices rejected.
        const data = night.runs.find((r) => r.job === 'fuji-data-nightly')!;
        assert.deepEqual([data.counts.sealed, data.counts.rejected], [40, 3]);
        assert.ok(
          lines.some((l) => l.includes('rendered as qualified invoices')),
          lines.join('\n'),
        );
        lastRuns = night.runs.map((r) => r.produced.runId);
        const byTenant = Object.fromEntries(night.credentials.map((c) => [c.tenant, c]));
        assert.equal(byTenant.sakura?.custody, 'approval');
        assert.equal(byTenant.sakura?.authorisations, 0);
        assert.equal(byTenant.sakura?.unusedSignatures, 8, 'approved 40, sealed 32');
        assert.equal(byTenant.fuji?.custody, 'provider-held');
        assert.equal(byTenant.fuji?.authorisations, 1);
        for (const tenant of ['sakura', 'fuji']) {
          const audit = await verifyTenantAudit(path.join(home, 'var', 'outbox'), tenant);
          assert.ok(audit.ok && audit.entries >= 33, JSON.stringify(audit));
        }
      }
      assert.equal(await redis.exists(`${prefix}:run:other-nightly-20261201-010000-000`), 1);
      assert.equal(await redis.exists(`${prefix}:seal.other:meta`), 1);
      assert.equal(await redis.exists(`${prefix}:run:fuji-nightly-eu-20261201-010000-000`), 1);

      // `sealer runs` and `sealer failed`, under the same (default) prefix, show the demo's night. They
      // run in this process (the commands' code without a process start each), under SEALER_PREFIX as
      // an operator would set it.
      const cli = async (...args: string[]) => {
        const r = await sealerInProcess([...args, '--jobs', path.join(home, 'jobs'), '--json'], {
          SEALER_PREFIX: prefix,
        });
        assert.equal(r.code, 0, `sealer ${args.join(' ')}: ${r.stderr}${r.logs}`);
        return JSON.parse(r.stdout) as Record<string, unknown>;
      };
      const runs = (await cli('runs')).runs as { runId: string; counts: { sealed: number } }[];
      for (const id of lastRuns)
        assert.ok(
          runs.some((r) => r.runId === id),
          `sealer runs lists ${id}`,
        );
      assert.equal(
        runs.filter((r) => lastRuns.includes(r.runId)).reduce((n, r) => n + r.counts.sealed, 0),
        104,
      );
      assert.deepEqual((await cli('failed')).failed, []);

      const kek = await fs.stat(path.join(home, 'var', 'kek'));
      assert.equal(kek.mode & 0o777, 0o600);
    } finally {
      await deleteKeysByPrefix(redis, prefix);
      redis.disconnect();
    }
  },
);

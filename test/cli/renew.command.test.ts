// `sealer renew` as an operator runs it (in-process through run()): the dry run lists each file it
// would renew with the reason and the TSA certificate's expiry, leaves B-B files out as not
// renewable and changes no byte; the real run prints the summary line and exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { run } from '../../src/cli/main';
import { loadJobs } from '../../src/jobs';
import { runNight } from '../../src/queue';
import { readManifest } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import {
  factorFileRefs,
  sandboxSecretsDir,
  startTestSandbox,
  writeImplicitSakuraJob,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

async function sealer(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const logs = { write: () => undefined };
  const code = await run(['node', 'sealer', ...args], {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    logs,
  });
  return { code, stdout, stderr };
}

test(
  'sealer renew --dry-run lists what it would renew and why, changes nothing; sealer renew renews and sums up',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { url, redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir, { tsaCertificateDays: 30 });
    const root = sandbox.rootCertPath;
    const jobsDir = path.join(dir, 'jobs');
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 2);
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, { level: 'B-LTA', trustRoots: [root] });
    await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', 1);
    const secrets = sandboxSecretsDir(dir, 'fuji');
    await writeJobFile(jobsDir, {
      tenant: 'fuji',
      credentialId: 'fuji-eseal-ec',
      providerUrl: sandbox.url,
      secretsDir: secrets,
      signing: {
        ...factorFileRefs(secrets, 'fuji-eseal-ec'),
        totp: { periodSec: 1 },
        level: 'B-B',
        trustRoots: [root],
      },
    });
    const night = await runNight({
      jobs: await loadJobs(jobsDir),
      connection,
      redis,
      prefix,
      logger: pino({ level: 'silent' }),
      concurrency: 5,
    });
    assert.ok(night.runs.every((r) => r.counts.failed === 0));
    await sandbox.rotateTsaCertificate(3650);
    const outbox = path.join(dir, 'outbox');
    const files = new Map<string, Buffer>();
    for (const r of night.runs) {
      const folder = path.join(outbox, r.tenant, r.produced.runDate);
      for (const row of await readManifest(path.join(folder, 'manifest.csv'))) {
        files.set(path.join(folder, row.file), await fs.readFile(path.join(folder, row.file)));
      }
    }

    const dry = await sealer([
      'renew',
      '--outbox',
      outbox,
      '--within',
      '365d',
      '--dry-run',
      '--jobs',
      jobsDir,
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    const lines = dry.stdout.trim().split('\n');
    const would = lines.filter((l) => l.startsWith('would renew: sakura '));
    assert.equal(would.length, 2, dry.stdout);
    for (const l of would)
      assert.match(l, /expires .* within the margin \[TSA certificate expires \d{4}-\d\d-\d\dT/);
    assert.doesNotMatch(dry.stdout, /would renew: fuji/);
    assert.match(dry.stdout, /renew \(dry run\): 3 files checked, 2 would be renewed/);
    for (const [file, bytes] of files)
      assert.ok((await fs.readFile(file)).equals(bytes), `${file} unchanged`);

    const saved = { REDIS_URL: process.env.REDIS_URL, SEALER_PREFIX: process.env.SEALER_PREFIX };
    process.env.REDIS_URL = url;
    process.env.SEALER_PREFIX = prefix;
    try {
      // As a process of its own: it must exit by itself once the renewals settle (no handle left open).
      const real = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
        execFile(
          process.execPath,
          [CLI, 'renew', '--outbox', outbox, '--jobs', jobsDir],
          { env: { ...process.env, REDIS_URL: url, SEALER_PREFIX: prefix, LOG_LEVEL: 'warn' } },
          (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
      assert.equal(real.code, 0, real.stderr);
      assert.match(
        real.stdout,
        /^renew: 3 files checked, 2 renewed, 1 skipped \(1 not renewable \(B-B: no timestamp\)\), 0 failed$/m,
      );
      assert.match(
        real.stderr,
        /\[2\/2\] sakura .*: renewed: .*document timestamp .* by .*Sealer Sandbox TSA/,
      );
      const again = await sealer([
        'renew',
        '--outbox',
        outbox,
        '--tenant',
        'sakura',
        '--dry-run',
        '--jobs',
        jobsDir,
      ]);
      assert.match(again.stdout, /renew \(dry run\): 2 files checked, 0 would be renewed/);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  },
);

test(
  'sealer renew exits 1 and names the reason when a renewal fails; the file keeps its bytes',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { url, redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir, { tsaCertificateDays: 30 });
    const root = sandbox.rootCertPath;
    const jobsDir = path.join(dir, 'jobs');
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 1);
    const jobFile = await writeImplicitSakuraJob(dir, jobsDir, sandbox, {
      level: 'B-LTA',
      timestamp: { url: sandbox.tsaUrl },
      trustRoots: [root],
    });
    const night = await runNight({
      jobs: await loadJobs(jobsDir),
      connection,
      redis,
      prefix,
      logger: pino({ level: 'silent' }),
    });
    assert.equal(night.runs[0]!.counts.sealed, 1);
    // The job's TSA now names a CA file that is not there: a configuration fault, failed at once.
    const def = JSON.parse(await fs.readFile(jobFile, 'utf8')) as { signing: { timestamp: object } };
    def.signing.timestamp = { ...def.signing.timestamp, caFile: path.join(dir, 'missing-tsa-ca.pem') };
    await fs.writeFile(jobFile, JSON.stringify(def));
    const folder = path.join(dir, 'outbox', 'sakura', night.runs[0]!.produced.runDate);
    const [row] = await readManifest(path.join(folder, 'manifest.csv'));
    const before = await fs.readFile(path.join(folder, row!.file));

    const saved = { REDIS_URL: process.env.REDIS_URL, SEALER_PREFIX: process.env.SEALER_PREFIX };
    process.env.REDIS_URL = url;
    process.env.SEALER_PREFIX = prefix;
    try {
      const out = await sealer(['renew', '--outbox', path.join(dir, 'outbox'), '--jobs', jobsDir]);
      assert.equal(out.code, 1, out.stdout + out.stderr);
      assert.match(out.stdout, /^renew: 1 files checked, 0 renewed, 0 skipped, 1 failed$/m);
      assert.match(out.stderr, /FAILED: .*caFile.*missing-tsa-ca\.pem/);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    assert.ok((await fs.readFile(path.join(folder, row!.file))).equals(before), 'file unchanged');
  },
);

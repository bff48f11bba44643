// What the compose services run, run here without Docker, in a temp folder laid out as the image's /app
// (jobs/ and var/): setup on a fresh host, then the worker and scheduler with the compose file's own
// command lines, before any tenant has factors or approvals. The worker must stay up (no restart loop),
// its healthcheck must pass, and SIGTERM must stop it within stop_grace_period.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { startTestSandbox } from '../helpers/night-fixture';
import { until } from '../helpers/worker-process';
import { totpCode } from '../../src/csc';

const execFileP = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const HEALTHCHECK = path.join(ROOT, 'dist', 'src', 'ops', 'healthcheck.js');

interface Service {
  command: string[];
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
}

async function services(): Promise<Record<string, Service>> {
  const text = await fs.readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8');
  return (parse(text, { merge: true }) as { services: Record<string, Service> }).services;
}

async function setup(app: string): Promise<{ stdout: string }> {
  // The setup service's entrypoint and command, with /app replaced by the temp folder.
  const s = (await services()).setup!;
  const args = s.command.map((a) => a.replace(/^\/app\//, `${app}/`));
  return execFileP('sh', [path.join(ROOT, 'docker', 'setup.sh'), ...args], { cwd: app });
}

async function mode(file: string): Promise<number> {
  return (await fs.stat(file)).mode & 0o777;
}

/** A compose service's command as a child process in `app`, output to a file; killed if left running. */
async function spawnService(app: string, command: string[], env: NodeJS.ProcessEnv, log: string) {
  const out = await fs.open(log, 'w');
  const child: ChildProcess = spawn(process.execPath, [CLI, ...command], {
    cwd: app,
    env: { ...process.env, ...env },
    stdio: ['ignore', out.fd, out.fd],
  });
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('exit', (code) => {
      out.close().catch(() => undefined);
      resolve({ code, at: Date.now() });
    }),
  );
  return { child, exited, text: () => fs.readFile(log, 'utf8') };
}

async function healthcheck(command: string, pid: number, redisUrl: string, healthzUrl?: string) {
  return execFileP(process.execPath, [HEALTHCHECK, command, ...(healthzUrl ? [healthzUrl] : [])], {
    env: { ...process.env, HEALTHCHECK_PID: String(pid), REDIS_URL: redisUrl },
  }).then(
    () => ({ code: 0, stderr: '' }),
    (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
  );
}

async function freshApp(): Promise<string> {
  const app = await tempDir('sealer-compose-');
  await fs.cp(path.join(ROOT, 'jobs'), path.join(app, 'jobs'), { recursive: true });
  for (const d of ['inbox/sakura', 'inbox/fuji', 'outbox', 'factors']) {
    await fs.mkdir(path.join(app, 'var', d), { recursive: true });
  }
  return app;
}

/** What compose's `secrets:` do for the worker: the files in SECRETS_DIR appear at the jobs' paths. */
async function mountSecrets(app: string): Promise<void> {
  const secrets = path.join(app, 'var', 'secrets');
  await fs.copyFile(path.join(secrets, 'kek'), path.join(app, 'var', 'kek'));
  await fs.chmod(path.join(app, 'var', 'kek'), await mode(path.join(secrets, 'kek')));
  for (const tenant of ['sakura', 'fuji']) {
    await fs.copyFile(
      path.join(secrets, `${tenant}-client-secret`),
      path.join(app, 'var', 'sandbox', 'secrets', tenant, 'client-secret'),
    );
  }
}

test(
  'setup makes a 0600 KEK and copies the client secrets; run again, it keeps them',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const app = await freshApp();
    await startTestSandbox(path.join(app, 'var'));
    const first = await setup(app);
    const secrets = path.join(app, 'var', 'secrets');
    const kek = await fs.readFile(path.join(secrets, 'kek'), 'utf8');
    assert.match(kek, /^[0-9a-f]{64}\n$/);
    assert.equal(await mode(path.join(secrets, 'kek')), 0o600);
    assert.equal(await mode(secrets), 0o700);
    assert.match(first.stdout, /made .*kek/);
    const password = await fs.readFile(path.join(secrets, 'dashboard-password'), 'utf8');
    assert.match(password, /^[A-Za-z0-9_-]{24}\n$/);
    assert.equal(await mode(path.join(secrets, 'dashboard-password')), 0o600);
    for (const tenant of ['sakura', 'fuji']) {
      const copy = path.join(secrets, `${tenant}-client-secret`);
      assert.equal(
        await fs.readFile(copy, 'utf8'),
        await fs.readFile(path.join(app, 'var', 'sandbox', 'secrets', tenant, 'client-secret'), 'utf8'),
      );
      assert.equal(await mode(copy), 0o600);
    }

    // Idempotent: a second run (every `docker compose up`) must not replace the key, and it tightens a
    // key file someone loosened rather than leaving one the worker refuses.
    await fs.chmod(path.join(secrets, 'kek'), 0o644);
    const second = await setup(app);
    assert.match(second.stdout, /kek exists, kept/);
    assert.equal(await fs.readFile(path.join(secrets, 'kek'), 'utf8'), kek);
    assert.equal(await mode(path.join(secrets, 'kek')), 0o600);
    assert.match(second.stdout, /sakura-client-secret up to date/);
    assert.equal(await fs.readFile(path.join(secrets, 'dashboard-password'), 'utf8'), password);
  },
);

test(
  'fresh host: the worker and scheduler start without factors or approvals, are healthy, stop on SIGTERM',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const app = await freshApp();
    const sandbox = await startTestSandbox(path.join(app, 'var'));
    await setup(app);
    await mountSecrets(app);
    const redis = await testRedis();
    const env = {
      REDIS_URL: redis.url,
      SEALER_PREFIX: redis.prefix,
      SEALER_PROVIDER_URL: sandbox.url,
      LOG_LEVEL: 'info',
    };
    const svc = await services();
    const worker = await spawnService(app, svc.worker!.command, env, path.join(app, 'worker.log'));
    const scheduler = await spawnService(app, svc.scheduler!.command, env, path.join(app, 'scheduler.log'));
    try {
      await until('the worker to start', 60_000, async () =>
        (await worker.text()).includes('"worker started"'),
      );
      const log = await worker.text();
      // fuji (provider-held) has no stored factors yet: named and skipped, not fatal.
      assert.match(log, /job fuji-nightly skipped: .*factor/i);
      assert.doesNotMatch(log, /job sakura-nightly skipped/);
      assert.equal(worker.child.exitCode, null, 'worker still running');

      assert.deepEqual(await healthcheck('work', worker.child.pid!, redis.url), { code: 0, stderr: '' });
      // The compose healthcheck also asks the worker's /healthz (Redis, provider, thread pool).
      const healthz = svc.worker!.healthcheck!.test.at(-1)!;
      assert.match(healthz, /^http:\/\/127\.0\.0\.1:\d+\/healthz$/);
      await until(
        'the worker to answer /healthz healthy',
        60_000,
        async () => (await healthcheck('work', worker.child.pid!, redis.url, healthz)).code === 0,
      );
      await until(
        'the scheduler to start',
        60_000,
        async () => (await healthcheck('schedule', scheduler.child.pid!, redis.url)).code === 0,
      );
      // It tells a process that is not the command, and a Redis that does not answer.
      const wrong = await healthcheck('schedule', worker.child.pid!, redis.url);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /is not `sealer schedule`/);
      const noRedis = await healthcheck('work', worker.child.pid!, 'redis://:hunter2@127.0.0.1:1');
      assert.equal(noRedis.code, 1);
      assert.match(noRedis.stderr, /Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 does not answer PING/);

      // docker compose stop: SIGTERM, then SIGKILL after stop_grace_period. Idle, it exits 0 well before.
      const graceMs = Number(/^(\d+)s$/.exec(svc.worker!.stop_grace_period ?? '')?.[1]) * 1000;
      const sent = Date.now();
      worker.child.kill('SIGTERM');
      scheduler.child.kill('SIGTERM');
      const w = await worker.exited;
      const s = await scheduler.exited;
      assert.equal(w.code, 0, await worker.text());
      assert.ok(w.at - sent < graceMs, `worker took ${w.at - sent} ms to stop`);
      assert.equal(s.code, 0, await scheduler.text());
      assert.equal((await healthcheck('work', worker.child.pid!, redis.url)).code, 1);
    } finally {
      for (const p of [worker, scheduler])
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
  },
);

test(
  'without a KEK the worker exits 1 at start-up (what restart: on-failure bounds), naming the key',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const app = await freshApp();
    const sandbox = await startTestSandbox(path.join(app, 'var'));
    const redis = await testRedis();
    const svc = await services();
    const env = { REDIS_URL: redis.url, SEALER_PREFIX: redis.prefix, SEALER_PROVIDER_URL: sandbox.url };
    const worker = await spawnService(app, svc.worker!.command, env, path.join(app, 'worker.log'));
    const { code } = await worker.exited;
    const log = await worker.text();
    assert.equal(code, 1, log);
    assert.match(log, /cannot start: no job definition can be used/);
    assert.match(log, /kek/);
  },
);

/** `docker compose run --rm -T worker ARGS` without Docker: the image's entrypoint, cwd /app, stdin given. */
async function runSealer(app: string, args: string[], env: NodeJS.ProcessEnv, stdin: string) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: app, env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin.end(stdin);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, out };
}

test(
  "the README's host steps: fuji's factors from the sandbox's files, sakura approved at the prompt; then no job is skipped",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const app = await freshApp();
    let totpTime = Date.now();
    const sandbox = await startTestSandbox(path.join(app, 'var'), { totpNow: () => totpTime });
    await setup(app);
    await mountSecrets(app);
    const redis = await testRedis();
    const env = { REDIS_URL: redis.url, SEALER_PREFIX: redis.prefix, SEALER_PROVIDER_URL: sandbox.url };

    // The README's `docker compose exec -T sandbox sh -c '...'`, run in the sandbox's /app.
    const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
    const script = /docker compose exec -T sandbox sh -c '([^']+)'/.exec(readme)?.[1];
    assert.ok(script, 'README pipes the sandbox secrets through sh -c');
    const { stdout: answers } = await execFileP('sh', ['-c', script], { cwd: app });
    assert.equal(answers.split('\n').length, 3, 'two lines: PIN and TOTP secret');
    const set = await runSealer(app, ['factors', 'set', '--tenant', 'fuji'], env, answers);
    assert.equal(set.code, 0, set.out);

    const pin = (
      await fs.readFile(path.join(app, 'var/sandbox/secrets/sakura/sakura-eseal-rsa.pin'), 'utf8')
    ).trim();
    const totp = (
      await fs.readFile(path.join(app, 'var/sandbox/secrets/sakura/sakura-eseal-rsa.totp'), 'utf8')
    ).trim();
    totpTime += 1000;
    const approve = await runSealer(
      app,
      ['approve', '--tenant', 'sakura', '--count', '3', '--prompt'],
      env,
      `${pin}\n${totpCode(totp, { period: 1, now: totpTime })}\n`,
    );
    assert.equal(approve.code, 0, approve.out);
    assert.match(approve.out, /approved: 3 seals for tenant sakura/);

    const worker = await spawnService(
      app,
      (await services()).worker!.command,
      env,
      path.join(app, 'worker.log'),
    );
    try {
      await until('the worker to start', 60_000, async () =>
        (await worker.text()).includes('"worker started"'),
      );
      assert.doesNotMatch(await worker.text(), /skipped/);
      worker.child.kill('SIGTERM');
      assert.equal((await worker.exited).code, 0);
    } finally {
      if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    }
  },
);

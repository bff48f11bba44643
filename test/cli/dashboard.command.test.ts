// `sealer dashboard`: refuses to start without a password (exit 2, saying how to give one), takes the
// password from a secret reference (env: or file:) and the user from SEALER_DASHBOARD_USER, prints the
// URL, serves the login page there, accepts only that user and password, and stops when asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../src/cli/main';
import { writeJobFile } from '../helpers/night-fixture';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

function io(signal?: AbortSignal) {
  const out = { stdout: '', stderr: '', logs: '' };
  return {
    out,
    io: {
      stdout: { write: (t: string) => (out.stdout += t) },
      stderr: { write: (t: string) => (out.stderr += t) },
      logs: { write: (t: string) => (out.logs += t) },
      signal,
    },
  };
}

/** Sets environment variables for one call and puts them back. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test('dashboard refuses to start without a password, with exit 2', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dir = await tempDir();
  const none = io();
  const code = await withEnv({ SEALER_DASHBOARD_PASSWORD_REF: undefined }, () =>
    run(['node', 'sealer', 'dashboard', '--port', '0', '--jobs', dir], none.io),
  );
  assert.equal(code, 2);
  assert.match(
    none.out.stderr,
    /refusing to start without a password: give --password-ref env:NAME or file:PATH/,
  );

  const unset = io();
  const code2 = await withEnv({ SEALER_TEST_NO_SUCH_PASSWORD: undefined }, () =>
    run(
      ['node', 'sealer', 'dashboard', '--password-ref', 'env:SEALER_TEST_NO_SUCH_PASSWORD', '--jobs', dir],
      unset.io,
    ),
  );
  assert.equal(code2, 2);
  assert.match(unset.out.stderr, /environment variable SEALER_TEST_NO_SUCH_PASSWORD is not set/);

  // A value typed where the reference belongs is refused without being echoed.
  const typed = io();
  const code3 = await run(
    ['node', 'sealer', 'dashboard', '--password-ref', 'hunter2-plain', '--jobs', dir],
    typed.io,
  );
  assert.equal(code3, 2);
  assert.ok(!typed.out.stderr.includes('hunter2-plain'));
});

test(
  'dashboard serves the login at the URL it prints, accepts the referenced password, stops on abort',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { url, prefix } = await testRedis();
    const jobsDir = path.join(dir, 'jobs');
    await writeJobFile(jobsDir, {
      tenant: 'fuji',
      credentialId: 'fuji-eseal-ec',
      providerUrl: 'http://127.0.0.1:9',
      // never resolved: the dashboard does not seal
      signing: { clientSecret: 'env:SEALER_TEST_UNUSED_SECRET' },
    });
    const secret = path.join(dir, 'dashboard-password');
    await fs.writeFile(secret, 'パスワード-42\n');
    const stop = new AbortController();
    const cli = io(stop.signal);
    const running = withEnv(
      {
        REDIS_URL: url,
        SEALER_PREFIX: prefix,
        SEALER_DASHBOARD_USER: 'night-ops',
        SEALER_DASHBOARD_PASSWORD_REF: undefined,
      },
      () =>
        run(
          [
            'node',
            'sealer',
            'dashboard',
            '--port',
            '0',
            '--password-ref',
            `file:${secret}`,
            '--jobs',
            jobsDir,
          ],
          cli.io,
        ),
    );
    let base: string | undefined;
    try {
      // Wait on the printed line, not on a clock.
      while (!base) {
        const m = /^dashboard: (http:\/\/127\.0\.0\.1:\d+)\/ \(user night-ops\)/m.exec(cli.out.stdout);
        if (m) base = m[1];
        else if (cli.out.stderr.includes('sealer:')) assert.fail(cli.out.stderr);
        else await new Promise((r) => setTimeout(r, 50));
      }
      const login = await fetch(`${base}/login`);
      assert.equal(login.status, 200);
      assert.match(await login.text(), /<form method="post" action="\/login"/);
      const post = (user: string, password: string) =>
        fetch(`${base}/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ user, password }).toString(),
          redirect: 'manual',
        });
      assert.equal((await post('night-ops', 'パスワード-41')).status, 401);
      assert.equal((await post('admin', 'パスワード-42')).status, 401);
      const ok = await post('night-ops', 'パスワード-42');
      assert.equal(ok.status, 303);
      const cookie = ok.headers.get('set-cookie')!;
      assert.match(cookie, /^sealer_ops=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/);
      const home = await fetch(`${base}/`, { headers: { cookie: cookie.split(';')[0]! } });
      assert.equal(home.status, 200);
      assert.match(await home.text(), /<tr data-tenant="fuji">/, cli.out.stderr);
      // /metrics and /healthz answer a scraper or an orchestrator without the login.
      const metrics = await fetch(`${base}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^sealer_queue_depth\{tenant="fuji",state="waiting"\} 0$/m);
      const healthz = await fetch(`${base}/healthz`);
      const checks = ((await healthz.json()) as { checks: { name: string; ok: boolean }[] }).checks;
      assert.ok(
        checks.some((c) => c.name === 'redis' && c.ok),
        JSON.stringify(checks),
      );
    } finally {
      stop.abort();
    }
    assert.equal(await running, 0);
    assert.match(cli.out.stderr, /dashboard stopped/);
    assert.ok(!cli.out.logs.includes('パスワード-42'), 'the password is never logged');
    await assert.rejects(fetch(`${base}/login`));
  },
);

test('dashboard --help says what it does', { timeout: TEST_TIMEOUT_MS }, async () => {
  const h = io();
  assert.equal(await run(['node', 'sealer', 'dashboard', '--help'], h.io), 0);
  assert.match(h.out.stdout, /Usage: sealer dashboard/);
  assert.match(h.out.stdout, /--password-ref <ref>/);
});

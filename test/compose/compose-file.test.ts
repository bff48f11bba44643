// The compose file and the Dockerfile, checked by parsing them (no Docker engine runs here): the structure
// a fresh host needs to seal, and that what the services run exists in this build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';
import { tempDir } from '../helpers/temp-dir';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

interface Service {
  image?: string;
  build?: unknown;
  entrypoint?: string[];
  command?: string[];
  container_name?: string;
  ports?: string[];
  volumes?: string[];
  secrets?: { source: string; target: string }[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
  stop_grace_period?: string;
  environment?: Record<string, string>;
}
interface ComposeFile {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
}

async function compose(): Promise<ComposeFile> {
  // merge: the services share an `x-sealer` anchor through `<<:`, as compose resolves it.
  return parse(await fs.readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8'), {
    merge: true,
  }) as ComposeFile;
}

function seconds(duration: string): number {
  const m = /^(\d+)(s|m)$/.exec(duration);
  assert.ok(m, `duration ${duration} is not Ns or Nm`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

function flag(command: string[], name: string): string | undefined {
  const i = command.indexOf(name);
  return i < 0 ? undefined : command[i + 1];
}

test(
  'services, one-shot setup first, healthchecks, scalable worker',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const c = await compose();
    assert.deepEqual(Object.keys(c.services).sort(), [
      'dashboard',
      'redis',
      'sandbox',
      'scheduler',
      'setup',
      'worker',
    ]);
    const { setup, worker, scheduler } = c.services as Record<string, Service>;
    assert.ok(setup && worker && scheduler);

    // setup runs once and must have succeeded before anything reads the key or the client secrets.
    assert.equal(setup.restart, 'no');
    assert.deepEqual(setup.entrypoint, ['sh', 'docker/setup.sh']);
    for (const [name, s] of [
      ['worker', worker],
      ['scheduler', scheduler],
    ] as const) {
      assert.deepEqual(s.depends_on?.setup, { condition: 'service_completed_successfully' }, name);
      assert.deepEqual(s.depends_on?.redis, { condition: 'service_healthy' }, name);
      // Bounded restarts: a worker that cannot start at all stops after a few tries instead of looping.
      assert.match(s.restart ?? '', /^on-failure:\d+$/, `${name} restart`);
      // The worker's check also asks its own /healthz, on the port its command serves metrics on.
      const port = flag(s.command ?? [], '--metrics-port');
      assert.deepEqual(
        s.healthcheck?.test,
        [
          'CMD',
          'node',
          'dist/src/ops/healthcheck.js',
          s.command?.[0],
          ...(port ? [`http://127.0.0.1:${port}/healthz`] : []),
        ],
        name,
      );
      await fs.access(path.join(ROOT, 'dist', 'src', 'ops', 'healthcheck.js'));
      assert.equal(s.environment?.REDIS_URL, 'redis://redis:6379');
    }
    assert.deepEqual(worker.depends_on?.sandbox, { condition: 'service_healthy' });
    assert.ok(flag(worker.command ?? [], '--metrics-port'), 'the worker serves /metrics and /healthz');

    // The dashboard: one instance on a published port, its password a compose secret setup makes.
    const dashboard = c.services.dashboard!;
    assert.equal(dashboard.command?.[0], 'dashboard');
    assert.equal(flag(dashboard.command ?? [], '--password-ref'), 'file:/run/secrets/dashboard-password');
    assert.ok(
      (dashboard.secrets ?? []).some(
        (s) => s.source === 'dashboard-password' && s.target === '/run/secrets/dashboard-password',
      ),
    );
    assert.match(c.secrets['dashboard-password']?.file ?? '', /^\$\{SECRETS_DIR.*\/dashboard-password$/);

    // --scale worker=3 needs no fixed name and no fixed host port.
    assert.equal(worker.container_name, undefined);
    assert.equal(worker.ports, undefined);
    assert.equal(worker.command?.[0], 'work');

    // Docker's SIGKILL must come after the worker's own grace period has run out.
    const grace = Number(flag(worker.command ?? [], '--grace'));
    assert.ok(grace > 0, 'worker command names --grace');
    assert.ok(seconds(worker.stop_grace_period ?? '0s') > grace, 'stop_grace_period exceeds --grace');
    assert.ok(scheduler.stop_grace_period);
  },
);

test(
  'inbox, outbox and secrets come from .env; .env.sample names them all',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const c = await compose();
    const text = await fs.readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    const sample = await fs.readFile(path.join(ROOT, '.env.sample'), 'utf8');
    const sampleVars = new Set([...sample.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]));
    for (const v of new Set([...text.matchAll(/\$\{([A-Z_]+)/g)].map((m) => m[1]))) {
      assert.ok(sampleVars.has(v), `.env.sample lacks ${v}, which docker-compose.yml uses`);
    }
    const jobs = await Promise.all(
      (await fs.readdir(path.join(ROOT, 'jobs'))).map(async (f) =>
        JSON.parse(await fs.readFile(path.join(ROOT, 'jobs', f), 'utf8')),
      ),
    );
    for (const name of ['worker', 'scheduler']) {
      const s = c.services[name]!;
      // Bind mounts of host folders the core system (inbox) and finance (outbox) reach.
      assert.ok(s.volumes?.includes('${INBOX_DIR:?set INBOX_DIR in .env}:/app/var/inbox'), `${name} inbox`);
      assert.ok(
        s.volumes?.includes('${OUTBOX_DIR:?set OUTBOX_DIR in .env}:/app/var/outbox'),
        `${name} outbox`,
      );
      // Every secret file a sample job reads is a compose secret mounted at the path the job resolves to.
      const targets = new Map((s.secrets ?? []).map((x) => [x.target, x.source]));
      for (const job of jobs) {
        for (const ref of [job.signing.clientSecret, job.signing.custody.kek] as string[]) {
          const file = path.posix.join('/app/jobs', ref.replace(/^file:/, ''));
          const source = targets.get(file);
          assert.ok(source, `${name}: ${job.name}'s ${ref} (${file}) is no compose secret's target`);
          assert.match(
            c.secrets[source]?.file ?? '',
            /^\$\{SECRETS_DIR:\?[^}]*\}\/(kek|[a-z]+-client-secret)$/,
            `secret ${source}: a file setup makes in SECRETS_DIR`,
          );
        }
        assert.ok(job.export.folder.startsWith('../var/inbox/'), `${job.name} reads the inbox mount`);
        assert.equal(job.outbox, '../var/outbox');
      }
    }
    assert.ok(
      c.services.setup?.volumes?.some((v) => v.startsWith('${SECRETS_DIR')),
      'setup writes SECRETS_DIR',
    );
  },
);

test(
  'Dockerfile: a build stage with tsc, a runtime stage with production dependencies only',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const text = await fs.readFile(path.join(ROOT, 'Dockerfile'), 'utf8');
    const lines = text.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    const stages: { from: string; name: string; body: string[] }[] = [];
    for (const line of lines) {
      const from = /^FROM (\S+) AS (\S+)$/.exec(line);
      if (from) stages.push({ from: from[1]!, name: from[2]!, body: [] });
      else stages.at(-1)?.body.push(line);
    }
    assert.deepEqual(
      stages.map((s) => [s.from, s.name]),
      [
        ['node:20-bookworm-slim', 'build'],
        ['node:20-bookworm-slim', 'runtime'],
      ],
    );
    const [build, runtime] = stages as [(typeof stages)[0], (typeof stages)[0]];
    assert.ok(build.body.some((l) => /RUN npm ci\b/.test(l) && !l.includes('--omit=dev')));
    assert.ok(build.body.some((l) => l.includes('tsc -p tsconfig.json')));
    assert.ok(runtime.body.some((l) => l.includes('npm ci --omit=dev')));
    assert.ok(runtime.body.some((l) => l.startsWith('COPY --from=build /app/dist/src')));
    assert.ok(!runtime.body.some((l) => /poppler|qpdf/.test(l)), 'no test tools at runtime');
    assert.ok(runtime.body.includes('USER node'));
    assert.ok(runtime.body.includes('ENTRYPOINT ["node", "dist/src/cli/main.js"]'));
    // Every file the runtime stage copies from the context exists and is not excluded by .dockerignore.
    const ignored = (await fs.readFile(path.join(ROOT, '.dockerignore'), 'utf8'))
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    for (const l of [...build.body, ...runtime.body]) {
      const m = /^COPY (?!--from)(.+) \S+$/.exec(l);
      for (const src of m ? m[1]!.split(' ') : []) {
        await fs.access(path.join(ROOT, src));
        assert.ok(!ignored.includes(src.split('/')[0]!), `${src} is in .dockerignore`);
      }
    }
  },
);

test(
  'every sealer command line in the compose file parses with this build',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const c = await compose();
    for (const [name, s] of Object.entries(c.services)) {
      if (s.image !== 'nightly-eseal-worker:latest' || s.entrypoint) continue;
      const command = s.command ?? [];
      const { stdout } = await run(process.execPath, [CLI, command[0]!, '--help']);
      // --help alone would hide an unknown flag, so each flag is looked up in the help text.
      for (const arg of command.filter((a) => a.startsWith('--'))) {
        assert.ok(stdout.includes(`${arg} `), `${name}: sealer ${command[0]} has no ${arg}`);
      }
    }
  },
);

test(
  'the build stage compiles from only what it copies; the runtime needs no dev dependency',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // The build stage's context, without Docker: the copied files and this checkout's node_modules.
    const ctx = await tempDir('sealer-docker-build-');
    for (const f of ['package.json', 'package-lock.json', '.npmrc', 'tsconfig.json', 'src']) {
      await fs.cp(path.join(ROOT, f), path.join(ctx, f), { recursive: true });
    }
    await fs.symlink(path.join(ROOT, 'node_modules'), path.join(ctx, 'node_modules'), 'dir');
    await run(
      process.execPath,
      [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
      {
        cwd: ctx,
      },
    );
    for (const f of ['dist/src/cli/main.js', 'dist/src/ops/healthcheck.js'])
      await fs.access(path.join(ctx, f));

    // Every package the compiled service requires is a production dependency (`npm ci --omit=dev`).
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const required = new Set<string>();
    const walk = async (dir: string): Promise<void> => {
      for (const e of await fs.readdir(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith('.js')) {
          for (const m of (await fs.readFile(p, 'utf8')).matchAll(/require\("([^".][^"]*)"\)/g)) {
            const spec = m[1]!;
            if (spec.startsWith('node:')) continue;
            required.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
          }
        }
      }
    };
    await walk(path.join(ctx, 'dist', 'src'));
    const builtins = new Set((await import('node:module')).builtinModules);
    const missing = [...required].filter((r) => !builtins.has(r) && !(r in pkg.dependencies));
    assert.deepEqual(missing, [], 'required by dist/src but not a production dependency');
    assert.ok(required.has('bullmq'), 'the scan found the requires');
  },
);

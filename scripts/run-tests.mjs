#!/usr/bin/env node
// The test runner behind `npm test`: runs every dist/test/**/*.test.js in its own `node --test` process,
// several at once; files that load the machine (a TypeScript build, a browser, several worker
// processes) take two slots; the six-worker TOTP file (and the fairness file at half a million jobs) runs
// alone. node's --test-concurrency cannot say "this file runs alone", and given dist/test/ it also runs
// every helper module as a file.
//
//   node scripts/run-tests.mjs [--concurrency N] [--file-timeout SEC] [--write-durations] [path ...]
//
// TEST_CONCURRENCY sets N as well (default: one more than the cores, at least 2: most files wait on
// Redis, child processes and sockets rather than on a core). Each file's output is printed in one piece
// when the file ends, so parallel files never interleave; the summary lists failures and the slowest
// files. Durations of the last run are kept in dist/.test-durations.json (a fresh clone starts from
// scripts/test-durations.json) and the longest files start first, so that the run does not end
// waiting on one long file started last.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST_TEST = path.join(ROOT, 'dist', 'test');
const DURATIONS_FILE = path.join(ROOT, 'dist', '.test-durations.json');
// The durations a fresh clone (CI) starts from, until its own run has written DURATIONS_FILE: from one
// run on the 2-core development machine; `--write-durations` refreshes it from the last run.
const CHECKED_IN_DURATIONS = path.join(ROOT, 'scripts', 'test-durations.json');

// Files that need more than one slot, relative to dist/test, each with why. `slots: 'all'` runs a file
// with nothing beside it; it also takes a lock that every runner on this machine honours, so that a
// second suite running beside this one (CI's shared machines) does not overlap it with its own copy.
// `testTimeoutMs` is for files whose own test timeout is longer than the default: on Node 20,
// --test-timeout bounds a whole file, so it would cut such a test short.
// The fairness file queues 20,000 jobs, an ordinary file's load; with SEALER_FAIRNESS_BIG at the issue's
// half million it fills Redis for minutes (its CPU, about 800 MB) and runs alone.
const FAIRNESS_BIG = Number(process.env.SEALER_FAIRNESS_BIG ?? 20_000);
const SPECIAL = new Map([
  [
    'queue/fairness.pause.test.js',
    FAIRNESS_BIG > 100_000
      ? {
          slots: 'all',
          testTimeoutMs: 600_000,
          why: `${FAIRNESS_BIG} jobs in Redis: its CPU and memory for minutes`,
        }
      : { slots: 1, testTimeoutMs: 600_000, why: 'its own 600 s test timeout' },
  ],
  ['compose/compose-file.test.js', { slots: 2, why: 'runs tsc over src' }],
  ['csc/authorization-code.browser.test.js', { slots: 2, why: 'headless chromium' }],
  ['ops/dashboard.browser.test.js', { slots: 2, why: 'headless chromium' }],
  [
    'queue/crash-safety.kill.test.js',
    { slots: 2, why: 'two worker processes sealing, killed and restarted' },
  ],
  // Six processes authorising with 1 s TOTP steps: beside other files (load 34) a code was refused once.
  ['queue/multi-worker.totp.test.js', { slots: 'all', why: 'six worker processes on 1 s TOTP steps' }],
  ['demo/run-demo.quick-start.test.js', { slots: 2, why: 'a whole demo night, twice' }],
]);

// Per test, as before this runner (and as the README says); a file that outlives the file timeout is
// killed with everything it started and counts as failed.
const TEST_TIMEOUT_MS = 300_000;

// The machine-wide lock of `slots: 'all'` files: a file holding the pid of the runner that holds it.
const ALONE_LOCK = path.join(os.tmpdir(), 'sealer-run-tests-alone.lock');
function tryLockAlone() {
  for (;;) {
    try {
      fs.writeFileSync(ALONE_LOCK, String(process.pid), { flag: 'wx' });
      return true;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let holder = 0;
    try {
      holder = Number(fs.readFileSync(ALONE_LOCK, 'utf8').trim());
      if (holder > 0) {
        process.kill(holder, 0);
        return false; // a live runner holds it
      }
    } catch {
      // its runner is gone (killed, crashed): the lock is stale
    }
    fs.rmSync(ALONE_LOCK, { force: true });
  }
}
function unlockAlone() {
  try {
    if (Number(fs.readFileSync(ALONE_LOCK, 'utf8').trim()) === process.pid) fs.rmSync(ALONE_LOCK);
  } catch {
    // not ours, or gone
  }
}

function parseArgs(argv) {
  const opts = {
    concurrency: Number(process.env.TEST_CONCURRENCY) || Math.max(2, os.availableParallelism() + 1),
    fileTimeoutSec: 900,
    paths: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--concurrency') opts.concurrency = Number(argv[++i]);
    else if (a === '--file-timeout') opts.fileTimeoutSec = Number(argv[++i]);
    else if (a === '--write-durations') opts.writeDurations = true;
    else opts.paths.push(a);
  }
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1)
    throw new Error(`--concurrency must be a positive integer, not ${opts.concurrency}`);
  if (!(opts.fileTimeoutSec > 0)) throw new Error('--file-timeout must be a number of seconds above 0');
  if (opts.paths.length === 0) opts.paths.push(DIST_TEST);
  return opts;
}

function testFiles(paths) {
  const out = [];
  const walk = (p) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
    } else if (p.endsWith('.test.js')) out.push(path.resolve(p));
  };
  for (const p of paths) walk(p);
  return [...new Set(out)];
}

function readDurations() {
  for (const file of [DURATIONS_FILE, CHECKED_IN_DURATIONS]) {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      // not written yet: the next one
    }
  }
  return {};
}

const rel = (file) => path.relative(DIST_TEST, file).split(path.sep).join('/');
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;

function runFile(file, testTimeoutMs, fileTimeoutMs) {
  return new Promise((resolve) => {
    const started = performance.now();
    // Its own process group, so that a timeout kills the file's children (workers, sandboxes, Redis) too.
    const child = spawn(
      process.execPath,
      ['--test', '--test-reporter=spec', `--test-timeout=${testTimeoutMs}`, file],
      {
        cwd: ROOT,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NO_COLOR: '1' },
      },
    );
    running.add(child);
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, fileTimeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      // Whatever the file left running in its group (a child it forgot to stop) goes with it.
      killGroup(child);
      resolve({
        file,
        ok: code === 0 && !timedOut,
        code,
        signal,
        timedOut,
        ms: performance.now() - started,
        output: Buffer.concat(chunks).toString('utf8'),
      });
    });
  });
}

const running = new Set();
function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    for (const c of running) killGroup(c);
    unlockAlone();
    process.exit(130);
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const files = testFiles(opts.paths);
  if (files.length === 0) throw new Error(`no *.test.js under ${opts.paths.join(', ')} (built?)`);
  const last = readDurations();
  const capacity = opts.concurrency;
  const special = (f) => SPECIAL.get(rel(f));
  const alone = (f) => special(f)?.slots === 'all';
  const weight = (f) => (alone(f) ? capacity : Math.min(capacity, special(f)?.slots ?? 1));
  // Files that run alone first, while nothing else has started: one further back would wait for every
  // running file to end, its slots idle meanwhile. Then longest first (unknown files count as long):
  // the tail of the run is then many short files.
  const queue = [...files].sort(
    (a, b) => Number(alone(b)) - Number(alone(a)) || (last[rel(b)] ?? 60_000) - (last[rel(a)] ?? 60_000),
  );

  const t0 = performance.now();
  console.log(`run-tests: ${files.length} files, ${capacity} at a time (${os.availableParallelism()} cores)`);
  const results = [];
  let used = 0;
  let retry;
  await new Promise((done) => {
    const startMore = () => {
      clearTimeout(retry);
      // Start files in queue order while they fit. A file that does not fit yet waits for room and
      // nothing behind it overtakes it, so a file that must run alone is not starved by short ones;
      // but one whose machine-wide lock another runner holds is passed over until it is free.
      let lockBusy = false;
      for (let i = 0; i < queue.length;) {
        const file = queue[i];
        const w = weight(file);
        if (used + w > capacity) break;
        if (alone(file) && !tryLockAlone()) {
          lockBusy = true;
          i++;
          continue;
        }
        queue.splice(i, 1);
        used += w;
        const testTimeoutMs = special(file)?.testTimeoutMs ?? TEST_TIMEOUT_MS;
        const fileTimeoutMs = Math.max(opts.fileTimeoutSec * 1000, testTimeoutMs + 60_000);
        runFile(file, testTimeoutMs, fileTimeoutMs).then((r) => {
          used -= w;
          if (alone(file)) unlockAlone();
          results.push(r);
          const status = r.ok ? 'ok' : r.timedOut ? `TIMED OUT after ${secs(fileTimeoutMs)}` : 'FAILED';
          process.stdout.write(
            `\n▶ ${rel(r.file)}: ${status} (${secs(r.ms)}, ${results.length}/${files.length})\n${r.output}`,
          );
          if (queue.length === 0 && used === 0) done();
          else startMore();
        });
      }
      // Only lock-waiting files can be left with nothing running: look again in a moment.
      if (lockBusy) retry = setTimeout(startMore, 2000);
    };
    startMore();
  });

  clearTimeout(retry);
  const wall = performance.now() - t0;
  const durations = { ...last };
  for (const r of results) durations[rel(r.file)] = Math.round(r.ms);
  const sorted = Object.fromEntries(Object.entries(durations).sort(([a], [b]) => a.localeCompare(b)));
  fs.writeFileSync(DURATIONS_FILE, JSON.stringify(sorted, null, 2) + '\n');
  if (opts.writeDurations) fs.writeFileSync(CHECKED_IN_DURATIONS, JSON.stringify(sorted, null, 2) + '\n');

  const failed = results.filter((r) => !r.ok);
  console.log(`\nrun-tests: slowest files`);
  for (const r of [...results].sort((a, b) => b.ms - a.ms).slice(0, 12))
    console.log(`  ${secs(r.ms).padStart(8)}  ${rel(r.file)}`);
  console.log(
    `run-tests: ${results.length - failed.length} of ${results.length} files passed in ${secs(wall)} wall` +
      ` (${secs(results.reduce((s, r) => s + r.ms, 0))} of file time, ${capacity} at a time)`,
  );
  for (const r of failed) console.log(`  FAILED ${rel(r.file)} (exit ${r.code ?? r.signal})`);
  // Why each failed, once more at the very end: a CI log is often read from its tail only, far from
  // where the file's own output was printed.
  for (const r of failed) console.log(`\nrun-tests: why ${rel(r.file)} failed:\n${failureSummary(r.output)}`);
  process.exitCode = failed.length > 0 ? 1 : 0;
}

/** The failure report of node's spec reporter (or the output's end), at most 30 lines. */
function failureSummary(output) {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => l.includes('failing tests:'));
  const picked = start >= 0 ? lines.slice(start + 1) : lines.slice(-30);
  return picked
    .filter((l) => l.trim() !== '' && !/^\s+at /.test(l))
    .slice(0, 30)
    .join('\n');
}

main().catch((err) => {
  console.error(`run-tests: ${err.message}`);
  process.exitCode = 2;
});

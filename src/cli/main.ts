#!/usr/bin/env node
// The `sealer` command: parses flags and delegates; no sealing logic lives here. `run(argv, io)` runs one
// command and resolves to its exit code, so tests can run a command in-process instead of paying for a
// child process (and racing its start-up against a clock).
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
// Types only: each command's module (and the Redis, BullMQ, PDF and crypto code behind it) is loaded by
// its action, when that command runs, so `sealer --help` and `--version` start in a fraction of a second.
import type { CliIo } from './context';
import type { RenewOptions } from './commands/renew';
import { parseBenchInput, parseBenchKey, parseBenchLevels } from './bench-levels';
import { usageErrorsExit2 } from './usage';
import {
  DEFAULT_AWAITING_SIGNATURE_PER_SLOT,
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_HELD_MB,
} from '../queue/worker-defaults';
import type { RetryCliOptions } from './commands/retry';

// The same streams as context.ts's processIo, which is not imported for them: context.ts pulls in Redis.
const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

/** package.json's version: main.js runs from dist/src/cli/ (and src/cli/ under a TS runner). */
function packageVersion(): string {
  for (const up of ['../../..', '../..']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, up, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'nightly-eseal-worker' && pkg.version) return pkg.version;
    } catch {
      // not this folder; try the next
    }
  }
  return 'unknown';
}

// The command modules by the path main.ts loads them from: types only, nothing is loaded here.
interface CommandModules {
  './commands/approve': typeof import('./commands/approve');
  './commands/archive': typeof import('./commands/archive');
  './commands/audit': typeof import('./commands/audit');
  './commands/bench': typeof import('./commands/bench');
  './commands/dashboard': typeof import('./commands/dashboard');
  './commands/demo': typeof import('./commands/demo');
  './commands/enqueue': typeof import('./commands/enqueue');
  './commands/factors': typeof import('./commands/factors');
  './commands/pause': typeof import('./commands/pause');
  './commands/renew': typeof import('./commands/renew');
  './commands/retry': typeof import('./commands/retry');
  './commands/run': typeof import('./commands/run');
  './commands/failed': typeof import('./commands/failed');
  './commands/runs': typeof import('./commands/runs');
  './commands/sandbox': typeof import('./commands/sandbox');
  './commands/schedule': typeof import('./commands/schedule');
  './commands/verify': typeof import('./commands/verify');
  './commands/work': typeof import('./commands/work');
}

/** One command's module, loaded when that command runs (require caches it). */
function loadCommand<P extends keyof CommandModules>(modulePath: P): CommandModules[P] {
  // A plain require, not import(): this is CommonJS, and import() would go through the ESM loader.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(modulePath) as CommandModules[P];
}

/**
 * An action that loads its command's module only when the command runs. `load` returns the command
 * function; commander's arguments (positional arguments, options, the Command) pass through unchanged.
 */
function lazy<A extends unknown[]>(load: () => (...args: A) => unknown): (...args: A) => Promise<void> {
  return async (...args: A) => {
    await load()(...args);
  };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

/** Whole yen, negative for a credit note; full-width digits and commas as an export writes them. */
function integer(value: string): number {
  const n = Number(value.normalize('NFKC').replace(/,/g, ''));
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a whole number (yen)');
  return n;
}

function buildProgram(io: CliIo): Command {
  const program = new Command('sealer')
    .description(
      'Nightly batch remote e-seal worker: seals core-system invoice exports through a CSC API provider',
    )
    .version(packageVersion(), '-V, --version', 'print the version (package.json) and exit')
    .showSuggestionAfterError(true)
    // Set before the subcommands are added, which inherit both.
    .exitOverride()
    .configureOutput({
      writeOut: (str) => void io.stdout.write(str),
      writeErr: (str) => void io.stderr.write(str),
      outputError: (str, write) => write(str.split('\n')[0] + '\n'),
    });

  const jobsOption = ['--jobs <dir>', 'folder of job definitions (*.json)', 'jobs'] as const;

  program
    .command('demo')
    .description(
      'seal the sample exports in fixtures/ end to end (local Redis or a private one, built-in sandbox provider)',
    )
    .option('--concurrency <n>', 'worker concurrency', positiveInt, DEFAULT_CONCURRENCY)
    .action(lazy(() => loadCommand('./commands/demo').demoCommand));

  program
    .command('enqueue')
    .description("run one producer now: read the job's exports and enqueue one seal job per invoice")
    .argument('[job]', 'job name (from the job definitions)')
    .option('--all', 'every job whose definition loads (the broken ones are named and the exit code is 1)')
    .option('--file <file>', "read this export file instead of the job's export folder")
    .option(
      '--max-queued <n>',
      'most jobs a tenant queue holds ready to run before reading waits for the workers (0: never wait)',
      nonNegativeInt,
      50_000,
    )
    .option(...jobsOption)
    .action(async (job: string | undefined, opts: { all?: boolean }, cmd: Command) => {
      if ((job === undefined) === !opts.all) {
        cmd.error(
          job ? 'error: give a job name or --all, not both' : "error: missing argument 'job' (or --all)",
        );
      }
      const { enqueueCommand } = loadCommand('./commands/enqueue');
      return enqueueCommand(job, cmd.opts(), io);
    });

  program
    .command('work')
    .description('seal queued invoices until stopped (SIGINT/SIGTERM finish the jobs in hand)')
    .option(...jobsOption)
    .option('--concurrency <n>', 'invoices processed at once', positiveInt, DEFAULT_CONCURRENCY)
    .option(
      '--awaiting-signature <n>',
      `invoices that may wait for their signature beyond --concurrency (default ${DEFAULT_AWAITING_SIGNATURE_PER_SLOT} × --concurrency; 0: they hold their slots)`,
      nonNegativeInt,
    )
    .option(
      '--max-held-mb <mb>',
      `source PDFs held at once, prepare to delivery (default ${DEFAULT_MAX_HELD_MB}); larger ones wait`,
      positiveInt,
    )
    .option('--threads <n>', 'prepare threads (default: one per core)', positiveInt)
    .option('--provider-url <url>', 'CSC API base URL for jobs that name none (default: SEALER_PROVIDER_URL)')
    .option('--max-input-mb <mb>', 'refuse a source PDF larger than this (default 64)', positiveInt)
    .option(
      '--max-inflated-mb <mb>',
      'refuse a PDF whose streams inflate to more than this (default 16)',
      positiveInt,
    )
    .option('--prepare-heap-mb <mb>', 'heap of each prepare thread (default 512)', positiveInt)
    .option('--prepare-deadline-sec <s>', 'longest one PDF may take to prepare (default 30)', positiveInt)
    .option(
      '--grace <seconds>',
      'on SIGTERM/SIGINT, wait this long for the jobs in hand, then exit',
      positiveInt,
      30,
    )
    .option(
      '--lock-duration <ms>',
      "a job's lock lasts this long without renewal (BullMQ lockDuration)",
      positiveInt,
    )
    .option(
      '--stalled-interval <ms>',
      'look for jobs of crashed workers this often (BullMQ stalledInterval)',
      positiveInt,
    )
    .option(
      '--metrics-port <port>',
      'serve Prometheus /metrics and /healthz on this port (0 = any free port)',
      nonNegativeInt,
    )
    .option('--metrics-host <host>', 'address for /metrics and /healthz', '127.0.0.1')
    .action(lazy(() => loadCommand('./commands/work').workCommand));

  program
    .command('schedule')
    .description(
      "run one cron trigger per job definition, in its time zone; each trigger enqueues that job's exports",
    )
    .option(...jobsOption)
    .action(async (opts: { jobs: string }) => {
      const { scheduleCommand } = loadCommand('./commands/schedule');
      await scheduleCommand(opts, io);
    });

  usageErrorsExit2(program.command('dashboard'))
    .description(
      'serve the ops web behind a login: queues (Bull Board), runs and failures with retry and pause buttons (audited), the archive',
    )
    .option('--port <port>', 'port to listen on (0 = any free port)', nonNegativeInt, 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--user <user>', 'login user (default: SEALER_DASHBOARD_USER, else admin)')
    .option(
      '--password-ref <ref>',
      'login password as a secret reference, env:NAME or file:PATH (default: SEALER_DASHBOARD_PASSWORD_REF)',
    )
    .option(...jobsOption)
    .action(async (opts: Parameters<CommandModules['./commands/dashboard']['dashboardCommand']>[0]) => {
      await loadCommand('./commands/dashboard').dashboardCommand(opts, io);
    });

  const factors = program
    .command('factors')
    .description(
      'provider-held custody: store, list and re-key the PIN and TOTP secret a tenant delegates (encrypted at rest)',
    );

  factors
    .command('set')
    .description(
      "store a tenant's PIN and TOTP secret, read from a hidden prompt or two stdin lines, empty for none (never from arguments)",
    )
    .requiredOption('--tenant <tenant>', 'tenant whose factors these are')
    .option('--credential <id>', 'credential ID (needed only when the tenant has several)')
    .option(...jobsOption)
    .action(lazy(() => loadCommand('./commands/factors').factorsSetCommand));

  factors
    .command('rotate-key')
    .description('re-encrypt stored factors under a new key-encryption key')
    .requiredOption('--new-kek <ref>', 'the new key: env:NAME or file:PATH (32 bytes, hex or base64)')
    .option('--tenant <tenant>', "the tenant's factors; the old key is its jobs' signing.custody.kek")
    .option(...jobsOption)
    .option('--vault <dir>', 'a vault folder, instead of the one the jobs name')
    .option('--old-kek <ref>', 'the current key, with --vault')
    .action(lazy(() => loadCommand('./commands/factors').factorsRotateKeyCommand));

  factors
    .command('list')
    .description('list stored factors: tenant, credential, key and date, never the values')
    .option(...jobsOption)
    .option('--vault <dir>', 'a vault folder, instead of the ones the jobs name')
    .action(lazy(() => loadCommand('./commands/factors').factorsListCommand));

  program
    .command('approve')
    .description(
      "approve N seals for a tenant that keeps its own factors: on the provider's page (default) or at a prompt",
    )
    .requiredOption('--tenant <tenant>', 'tenant whose credential is approved')
    .requiredOption('--count <n>', 'number of seals to approve', positiveInt)
    .option('--credential <id>', 'credential, when the tenant has several')
    .option(
      '--prompt',
      'ask for PIN and OTP here (hidden; or one per stdin line) instead of the provider page',
    )
    .option(
      '--approver <name>',
      "who approves, for the audit trail (default: the identity the provider's page reports, if any)",
    )
    .option('--provider-url <url>', 'CSC API base URL for jobs that name none (default: SEALER_PROVIDER_URL)')
    .option('--timeout-sec <sec>', 'how long to wait for the provider page', positiveInt, 600)
    .option(...jobsOption)
    .action(lazy(() => loadCommand('./commands/approve').approveCommand));

  program
    .command('renew')
    .description(
      'archive renewal: add fresh validation data and a new document timestamp to delivered files whose ' +
        "newest document timestamp's TSA certificate expires within the margin (or that lack them)",
    )
    .requiredOption('--outbox <dir>', 'the outbox folder (<outbox>/<tenant>/<run date>/manifest.csv)')
    .option('--tenant <tenant>', 'only this tenant (default: every tenant folder under the outbox)')
    .option(
      '--within <margin>',
      'renew when the TSA certificate expires within this (365d, 90d, 12h)',
      '365d',
    )
    .option('--dry-run', 'list what would be renewed and why; change nothing, enqueue nothing')
    .option('--provider-url <url>', 'CSC API base URL for jobs that name none (default: SEALER_PROVIDER_URL)')
    .option(...jobsOption)
    .action(async (opts: RenewOptions) => {
      const { renewCommand } = loadCommand('./commands/renew');
      await renewCommand(opts, io);
    });

  usageErrorsExit2(program.command('runs'))
    .description(
      'show recent runs (counts, invoices awaiting approval, times, level) and the approvals parked',
    )
    .option('--tenant <tenant>', "only this tenant's runs and approvals")
    .option('--limit <n>', 'runs to show', positiveInt, 20)
    .option('--json', 'print one JSON document')
    .option(...jobsOption)
    .action(async (opts: Parameters<CommandModules['./commands/runs']['runsCommand']>[0]) => {
      await loadCommand('./commands/runs').runsCommand(opts, io);
    });

  usageErrorsExit2(program.command('run'))
    .description("show one run: counts, times, level, its failed invoices and export files' problems")
    .argument('<runId>', 'run ID (from sealer runs)')
    .option('--json', 'print one JSON document')
    .option(...jobsOption)
    .action(async (runId: string, opts: Parameters<CommandModules['./commands/run']['runCommand']>[1]) => {
      await loadCommand('./commands/run').runCommand(runId, opts, io);
    });

  usageErrorsExit2(program.command('failed'))
    .description('list failed invoices: tenant, run, kind, reason, attempts, export file and line')
    .option('--run <runId>', "only this run's")
    .option('--tenant <tenant>', "only this tenant's")
    .option('--json', 'print one JSON document')
    .option(...jobsOption)
    .action(async (opts: Parameters<CommandModules['./commands/failed']['failedCommand']>[0]) => {
      await loadCommand('./commands/failed').failedCommand(opts, io);
    });

  usageErrorsExit2(program.command('retry'))
    .description(
      're-queue failed invoices (attempts reset); one sealed since is reported as already sealed, never sealed twice',
    )
    .argument('[jobId...]', 'job IDs (from sealer failed)')
    .option('--run <runId>', 'every failed invoice of this run')
    .option('--all-failed', 'every failed invoice of every run')
    .option('--tenant <tenant>', "with --run or --all-failed: only this tenant's")
    .option('--json', 'print one JSON document')
    .option(...jobsOption)
    .action(async (jobIds: string[], opts: RetryCliOptions, cmd: Command) => {
      const { retryCommand, retryTarget } = loadCommand('./commands/retry');
      await retryCommand(retryTarget(jobIds, opts, cmd), opts, io);
    });

  for (const action of ['pause', 'resume'] as const) {
    usageErrorsExit2(program.command(action))
      .description(
        action === 'pause'
          ? "stop taking invoices from one tenant's queue (the others keep sealing), or every tenant's; jobs in hand finish"
          : "take invoices again from one tenant's queue, or every tenant's",
      )
      .option('--tenant <tenant>', `only this tenant (default: every tenant)`)
      .option('--json', 'print one JSON document')
      .option(...jobsOption)
      .action(async (opts: Parameters<CommandModules['./commands/pause']['pauseCommand']>[1]) => {
        await loadCommand('./commands/pause').pauseCommand(action, opts, io);
      });
  }

  const archive = program
    .command('archive')
    .description(
      "finance's archive of sealed invoices: search by issue date, amount and customer; rebuild the index",
    );
  usageErrorsExit2(archive.command('search'))
    .description(
      "search a tenant's sealed invoices by issue-date range, amount range and customer, alone or combined",
    )
    .requiredOption('--tenant <tenant>', 'whose invoices')
    .option('--from <date>', 'issue date from (YYYY-MM-DD, inclusive)')
    .option('--to <date>', 'issue date to (YYYY-MM-DD, inclusive)')
    .option('--min <yen>', 'amount from (whole yen, inclusive)', integer)
    .option('--max <yen>', 'amount to (whole yen, inclusive)', integer)
    .option('--customer <text>', "part of the customer's name (width and case folded)")
    .option('--limit <n>', 'rows to show (at most 1000)', positiveInt, 100)
    .option('--offset <n>', 'rows to skip', nonNegativeInt, 0)
    .option('--json', 'print one JSON document')
    .option(...jobsOption)
    .action(async (opts: Parameters<CommandModules['./commands/archive']['archiveSearchCommand']>[0]) => {
      await loadCommand('./commands/archive').archiveSearchCommand(opts, io);
    });
  archive
    .command('reindex')
    .description(
      "rebuild the archive index from the outbox's manifests (an upsert: run again, nothing changes)",
    )
    .option('--tenant <tenant>', 'only this tenant (default: every tenant of the job definitions)')
    .option(...jobsOption)
    .action(async (opts: { jobs: string; tenant?: string }) => {
      await loadCommand('./commands/archive').archiveReindexCommand(opts, io);
    });

  const sandbox = program
    .command('sandbox')
    .description('run the local CSC v2 e-seal provider (test CA, two tenants) for demos and tests')
    // `sandbox revoke` and `sandbox otp` read the sandbox's --data-dir (and --totp-period): show them.
    .configureHelp({ showGlobalOptions: true })
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 = any free port)', nonNegativeInt, 8700)
    .option('--data-dir <dir>', 'where keys, certificates and secrets are kept', 'var/sandbox')
    .option('--latency-ms <ms>', 'added latency per call', nonNegativeInt, 0)
    .option('--ecdsa-format <format>', 'ECDSA signatures as der or raw (r||s)', 'der')
    .option(
      '--public-url <origin>',
      'origin clients reach it at, advertised in /info (default http://host:port)',
    )
    .option('--totp-period <sec>', 'TOTP time step in seconds (tests and the bench use 1)', positiveInt, 30)
    .option('--tls', 'serve HTTPS with a certificate from the sandbox root CA (clients trust ca/root.pem)')
    .option(
      '--faults <spec>',
      'inject faults: a spec such as "seed=1,signHash:503:2s=0.1,csc:latency:50-200ms" or a .json plan (see src/sandbox/README.md)',
    )
    .option(
      '--tsa-cert-days <days>',
      'validity of the TSA certificate (re-issued when it differs)',
      positiveInt,
      3650,
    )
    .option('--tsa-latency-ms <ms>', 'added latency per TSA answer', nonNegativeInt, 0)
    .option(
      '--bench-tenant',
      'also provision tenant bench (bench-eseal-rsa, bench-eseal-ec: multisign 100000), kept in --data-dir',
    )
    .action(lazy(() => loadCommand('./commands/sandbox').sandboxCommand));

  sandbox
    .command('revoke <credentialId>')
    .description(
      "revoke a sandbox credential's certificate in --data-dir (a running sandbox's OCSP and CRL show it at once)",
    )
    .option('--reason <reason>', 'CRL reason: unspecified, keyCompromise, superseded, ...', 'unspecified')
    // --data-dir is the sandbox command's own option (commander hands it to the parent).
    .action(async (credentialId: string, _opts: unknown, cmd: Command) => {
      const { sandboxRevokeCommand } = loadCommand('./commands/sandbox');
      await sandboxRevokeCommand(credentialId, cmd.optsWithGlobals<{ dataDir: string; reason: string }>());
    });

  sandbox
    .command('otp <credentialId>')
    .description(
      "print a sandbox credential's current TOTP code (from --data-dir), for approving by hand on the sandbox page",
    )
    // --data-dir and --totp-period are the sandbox command's own options (commander hands them over).
    .action(async (credentialId: string, _opts: unknown, cmd: Command) => {
      const { sandboxOtpCommand } = loadCommand('./commands/sandbox');
      await sandboxOtpCommand(credentialId, cmd.optsWithGlobals<{ dataDir: string; totpPeriod: number }>());
    });

  const audit = program
    .command('audit')
    .description("check a tenant's hash-chained audit trail (authorisations, seals, refusals)");

  audit
    .command('verify')
    .description(
      "verify a tenant's audit trail (--tenant) or one log file (--file); names the first bad line, exits non-zero on any",
    )
    .option('--tenant <tenant>', "tenant whose audit trail to check, in its job definitions' outboxes")
    .option('--file <file>', 'one audit log file alone (its first entry is taken as given)')
    .option(...jobsOption)
    .action(lazy(() => loadCommand('./commands/audit').auditVerifyCommand));

  program
    .command('verify')
    .description(
      'check every signature and document timestamp in sealed PDFs: integrity, signer, chain (with --root), ' +
        'timestamps, revocation data, PAdES level, DocMDP and later changes; exits 1 when any fails',
    )
    .argument('<pdf...>', 'sealed PDF files')
    .option(
      '--root <pem>',
      'trusted root certificate(s) in a PEM file, e.g. var/sandbox/ca/root.pem; repeatable',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--json', 'print a JSON array per file with every field instead of one line per signature')
    .action((files: string[], opts: Parameters<CommandModules['./commands/verify']['verifyCommand']>[1]) =>
      loadCommand('./commands/verify').verifyCommand(files, opts, io),
    );

  program
    .command('bench')
    .description(
      'seal N generated invoices through the whole path, then naively (one authorize + one signHash per invoice), and compare with a read+hash+write floor',
    )
    .addHelpText(
      'after',
      [
        '',
        'The sandbox runs its real 30 s TOTP step by default, and a credential can be authorised once per step:',
        'the ceiling is multisign / step invoices/s. The default credential is therefore the sandbox bench',
        "tenant's (bench-eseal-rsa or, with --key ec, bench-eseal-ec: multisign 100000, a 3,333/s ceiling),",
        'so 20,000 invoices need one authorisation, not 40 steps (20 minutes) at multisign 500. Pick another',
        'with --credential (e.g. sakura-eseal-rsa, multisign 500: 16.7/s). The naive mode waits for a fresh',
        'TOTP step per invoice (about --totp-period seconds each); --naive 0 skips it.',
        'Printed per night: rate and the ceiling, CPU per invoice per process, wall time per stage, signHash',
        'latency p50/p99, peak RSS of each process, Redis used_memory peak (sampled: the server is shared).',
      ].join('\n'),
    )
    .option('--invoices <n>', 'invoices to generate', positiveInt, 2000)
    .option('--concurrency <n>', 'jobs in hand per worker process', positiveInt, DEFAULT_CONCURRENCY)
    .option(
      '--awaiting-signature <n>',
      `jobs per worker process that may wait for their signature beyond --concurrency (default ${DEFAULT_AWAITING_SIGNATURE_PER_SLOT} × --concurrency)`,
      nonNegativeInt,
    )
    .option('--batch-size <n>', 'hashes per signHash call', positiveInt, 100)
    .option(
      '--latency-ms <ms>',
      "provider latency added to every CSC call (the sandbox's csc:latency fault)",
      nonNegativeInt,
      0,
    )
    .option('--totp-period <sec>', "the sandbox's TOTP step and the job's", positiveInt, 30)
    .option('--key <type>', 'key of the bench credential: ec (P-256) or rsa (RSA-2048)', parseBenchKey, 'rsa')
    .option(
      '--credential <id>',
      'seal with this sandbox credential instead (its tenant, secrets and multisign)',
    )
    .option('--workers <n>', 'worker processes on the one Redis', positiveInt, 1)
    .option('--naive <n>', 'invoices sealed the naive way after the worker (0: skip)', nonNegativeInt, 3)
    .option('--json <file>', 'also write every figure to this JSON file')
    .option(
      '--work-dir <dir>',
      'keep exports, outboxes, sandbox and logs here (default: a temp folder, removed)',
    )
    .option(
      '--verify',
      'after timing, check every sealed file with the product verifier (exit 1 if one fails)',
    )
    .option(
      '--level <levels>',
      'PAdES level(s) to seal at, one night each: B-B, B-T, B-LT, B-LTA, a comma list, or all',
      parseBenchLevels,
      ['B-B'],
    )
    .option('--tsa-latency-ms <ms>', 'sandbox TSA latency per timestamp', nonNegativeInt, 0)
    .option(
      '--input <kind>',
      'pdf: an export of invoice PDFs; data: invoice data, rendered as qualified invoices in the night, then sealed',
      parseBenchInput,
      'pdf',
    )
    .option(
      '--archive-rows <n>',
      'instead: fill an archive index with N synthetic invoices and time each search shape',
      positiveInt,
    )
    .option(
      '--archive <spec>',
      'with --archive-rows: a postgres:// URL or a new SQLite file (default a temporary SQLite file)',
    )
    .action(lazy(() => loadCommand('./commands/bench').benchCommand));

  return program;
}

/**
 * Runs one `sealer` command line (`argv` as process.argv: node, script, arguments) and resolves to its
 * exit code. Errors are one line on `io.stderr`; nothing here calls process.exit.
 */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  // Some commands report failure through process.exitCode after printing; it is taken and restored so
  // an in-process run does not leave it set on its host.
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (err) {
    // Commander has already written its one-line error or the help text.
    if (err instanceof CommanderError) return err.exitCode;
    io.stderr.write(`sealer: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    process.exitCode = before;
  }
}

if (require.main === module) {
  run(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`sealer: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

#!/usr/bin/env node
// The `sealer` command: parses flags and delegates; no sealing logic lives here.
import { Command, InvalidArgumentError } from 'commander';
import { enqueueCommand } from './commands/enqueue';
import { workCommand } from './commands/work';
import { scheduleCommand } from './commands/schedule';
import { sandboxCommand } from './commands/sandbox';
import { verifyCommand } from './commands/verify';
import { demoCommand } from './commands/demo';
import { benchCommand } from './commands/bench';

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

const program = new Command('sealer')
  .description(
    'Nightly batch remote e-seal worker: seals core-system invoice exports through a CSC API provider',
  )
  .showSuggestionAfterError(true)
  .configureOutput({ outputError: (str, write) => write(str.split('\n')[0] + '\n') });

const jobsOption = ['--jobs <dir>', 'folder of job definitions (*.json)', 'jobs'] as const;

program
  .command('demo')
  .description(
    'seal the sample exports in fixtures/ end to end (local Redis or a private one, built-in sandbox provider)',
  )
  .option('--concurrency <n>', 'worker concurrency', positiveInt, 64)
  .action(demoCommand);

program
  .command('enqueue')
  .description("run one producer now: read the job's exports and enqueue one seal job per invoice")
  .argument('<job>', 'job name (from the job definitions)')
  .option('--file <file>', "read this export file instead of the job's export folder")
  .option(...jobsOption)
  .action(enqueueCommand);

program
  .command('work')
  .description('seal queued invoices until stopped (SIGINT/SIGTERM finish the jobs in hand)')
  .option(...jobsOption)
  .option('--concurrency <n>', 'invoices processed at once', positiveInt, 64)
  .option('--threads <n>', 'prepare threads (default: one per core)', positiveInt)
  .option('--provider-url <url>', 'CSC API base URL for jobs that name none (default: SEALER_PROVIDER_URL)')
  .action(workCommand);

program
  .command('schedule')
  .description(
    "run one cron trigger per job definition, in its time zone; each trigger enqueues that job's exports",
  )
  .option(...jobsOption)
  .action(scheduleCommand);

program
  .command('sandbox')
  .description('run the local CSC v2 e-seal provider (test CA, two tenants) for demos and tests')
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
  .action(sandboxCommand);

program
  .command('verify')
  .description(
    'check every signature in sealed PDFs: byte range, message digest, signature, and chain when --root is given',
  )
  .argument('<pdf...>', 'sealed PDF files')
  .option('--root <pem>', 'trusted root certificate (PEM), e.g. var/sandbox/ca/root.pem')
  .action(verifyCommand);

program
  .command('bench')
  .description('seal N generated invoices through the whole path and compare with a read+hash+write floor')
  .option('--invoices <n>', 'invoices to generate', positiveInt, 2000)
  .option('--concurrency <n>', 'worker concurrency', positiveInt, 128)
  .option('--batch-size <n>', 'hashes per signHash call', positiveInt, 100)
  .option('--latency-ms <ms>', 'sandbox latency per call', nonNegativeInt, 0)
  .action(benchCommand);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`sealer: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

// `sealer factors` as an operator runs it: factors go in through stdin (never argv), come back out of the
// vault only in memory, and never show in any output; rotate-key and list work from the job definitions.
// Storing and re-keying are recorded in the tenant's audit trail by key fingerprint, never by key or factor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FactorVault, kekIdOf } from '../../src/custody';
import { auditDir, listAuditFiles } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const PIN = '582046';
const TOTP_SECRET = 'KRUGS4ZANFZSAYJAORSXG5BAONSWG4TF';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  args: string[];
}

/** Runs `sealer` with `input` on a piped (non-TTY) stdin. */
function sealer(args: string[], env: NodeJS.ProcessEnv, input = '', cwd?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, args }));
    child.stdin.end(input);
  });
}

function assertNoSecret(run: Run, secrets: string[] = [PIN, TOTP_SECRET]): void {
  for (const s of secrets) {
    assert.ok(!run.stdout.includes(s), `stdout of ${run.args.join(' ')} shows a secret`);
    assert.ok(!run.stderr.includes(s), `stderr of ${run.args.join(' ')} shows a secret`);
    assert.ok(!run.args.some((a) => a.includes(s)), 'a secret was passed in argv');
  }
}

function job(name: string, tenant: string, credentialId: string, custody: unknown) {
  return {
    name,
    cron: '0 2 * * *',
    tenant,
    export: {
      folder: `../inbox/${tenant}`,
      columns: {
        invoiceNumber: '請求書番号',
        customerName: '取引先名',
        amount: '請求金額',
        pdfPath: 'PDFファイル',
      },
    },
    signing: {
      clientId: `${tenant}-app`,
      clientSecret: `env:${tenant.toUpperCase()}_CLIENT_SECRET`,
      credentialId,
      custody,
      totp: { digits: 8, periodSec: 30, algorithm: 'SHA256' },
    },
    outbox: '../outbox',
  };
}

/** The raw text of tenant bco's audit trail in `<dir>/outbox`, and its entries. */
async function bcoAudit(dir: string): Promise<{ text: string; entries: Record<string, unknown>[] }> {
  const files = await listAuditFiles(auditDir(path.join(dir, 'outbox'), 'bco'));
  const text = (await Promise.all(files.map((f) => fs.readFile(f, 'utf8')))).join('');
  const entries = text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { text, entries };
}

/** `sealer audit verify --tenant bco` exits 0 and finds `entries` entries. */
async function assertAuditIntact(jobs: string, entries: number): Promise<void> {
  const run = await sealer(['audit', 'verify', '--tenant', 'bco', '--jobs', jobs], {});
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, new RegExp(`audit bco: 1 file\\(s\\), ${entries} entries, chain intact`));
}

/** A jobs folder with tenant bco (provider-held, vault ../vault) and tenant aco (secret references). */
async function setup(extra: ReturnType<typeof job>[] = []) {
  const dir = await tempDir();
  const jobs = path.join(dir, 'jobs');
  await fs.mkdir(jobs);
  const all = [
    job('bco-nightly', 'bco', 'bco-eseal', { mode: 'provider-held', vault: '../vault' }),
    job('aco-nightly', 'aco', 'aco-eseal', { mode: 'secret-refs' }),
    ...extra,
  ];
  for (const j of all) await fs.writeFile(path.join(jobs, `${j.name}.json`), JSON.stringify(j));
  const kek = crypto.randomBytes(32);
  return { dir, jobs, vaultDir: path.join(dir, 'vault'), kek, env: { SEALER_KEK: kek.toString('hex') } };
}

test(
  'factors set reads PIN and TOTP secret from stdin and stores them for the worker to read back',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { dir, jobs, vaultDir, kek, env } = await setup();
    const run = await sealer(
      ['factors', 'set', '--tenant', 'bco', '--jobs', jobs],
      env,
      `${PIN}\n${TOTP_SECRET}\n`,
    );
    assert.equal(run.code, 0, run.stderr);
    const file = path.join(vaultDir, 'bco', 'bco-eseal.factors.json');
    const trail = auditDir(path.join(dir, 'outbox'), 'bco');
    assert.deepEqual(run.stdout.trim().split('\n'), [
      `factors of tenant bco, credential bco-eseal stored in ${file} under key ${kekIdOf(kek)}`,
      `audit entry factors-stored appended to ${trail} (seq 1)`,
    ]);
    assertNoSecret(run);

    // The audit trail records the storing by credential and key fingerprint, and holds no secret.
    await assertAuditIntact(jobs, 1);
    const audit = await bcoAudit(dir);
    assert.equal(audit.entries.length, 1);
    const [stored] = audit.entries;
    assert.equal(stored?.type, 'factors-stored');
    assert.equal(stored?.tenant, 'bco');
    assert.equal(stored?.credentialId, 'bco-eseal');
    assert.equal(stored?.kekFingerprint, kekIdOf(kek));
    for (const secret of [PIN, TOTP_SECRET, kek.toString('hex'), kek.toString('base64')]) {
      assert.ok(!audit.text.includes(secret), 'the audit trail holds a secret');
    }

    const back = await new FactorVault(vaultDir, kek).read('bco', 'bco-eseal');
    assert.equal(back.pin, PIN);
    assert.equal(back.totpSecret, TOTP_SECRET);
    assert.deepEqual(back.totp, { digits: 8, periodSec: 30, algorithm: 'SHA256' }, "the job's TOTP settings");
    const bytes = await fs.readFile(file);
    assert.equal(bytes.indexOf(PIN), -1);
    assert.equal(bytes.indexOf(TOTP_SECRET), -1);

    // An empty line means "none".
    const pinOnly = await sealer(['factors', 'set', '--tenant', 'bco', '--jobs', jobs], env, `${PIN}\n\n`);
    assert.equal(pinOnly.code, 0, pinOnly.stderr);
    assert.equal((await new FactorVault(vaultDir, kek).read('bco', 'bco-eseal')).totpSecret, undefined);
    await assertAuditIntact(jobs, 2);
    assert.deepEqual(
      (await bcoAudit(dir)).entries.map((e) => e.type),
      ['factors-stored', 'factors-stored'],
    );
  },
);

test(
  'factors set takes no factor from argv, and refuses short input, wrong tenants and ambiguity',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { jobs, vaultDir, env } = await setup([
      job('bco-extra', 'bco', 'bco-eseal-2', { mode: 'provider-held', vault: '../vault' }),
    ]);
    const set = (extra: string[], input = `${PIN}\n${TOTP_SECRET}\n`) =>
      sealer(['factors', 'set', '--jobs', jobs, ...extra], env, input);

    const help = await sealer(['factors', 'set', '--help'], env);
    assert.equal(help.code, 0);
    assert.doesNotMatch(help.stdout, /--pin|--totp|--secret/);
    const viaArgv = await set(['--tenant', 'bco', '--credential', 'bco-eseal', '--pin', '000000']);
    assert.notEqual(viaArgv.code, 0);
    assert.match(viaArgv.stderr, /unknown option '--pin'/);

    const cases: [string[], string, RegExp][] = [
      [
        ['--tenant', 'bco'],
        `${PIN}\n${TOTP_SECRET}\n`,
        /several provider-held credentials \(bco-eseal, bco-eseal-2\).*--credential/,
      ],
      [
        ['--tenant', 'aco'],
        '',
        /tenant aco has no job with signing.custody provider-held.*aco-nightly \(custody secret-refs\)/,
      ],
      [['--tenant', 'zco'], '', /tenant zco has no job with signing.custody provider-held/],
      [['--tenant', 'bco', '--credential', 'nope'], '', /no provider-held job for credential nope/],
      [
        ['--tenant', 'bco', '--credential', 'bco-eseal'],
        `${PIN}\n`,
        /stdin ended before the TOTP secret \(Base32\) was given; nothing was stored/,
      ],
      [['--tenant', 'bco', '--credential', 'bco-eseal'], `${PIN}\n${PIN}\n`, /not Base32/],
      [['--tenant', 'bco', '--credential', 'bco-eseal'], '\n\n', /nothing to store/],
    ];
    for (const [args, input, pattern] of cases) {
      const run = await set(args, input);
      assert.notEqual(run.code, 0, args.join(' '));
      assert.match(run.stderr, pattern);
      assertNoSecret(run);
    }
    const noKek = await sealer(
      ['factors', 'set', '--tenant', 'bco', '--credential', 'bco-eseal', '--jobs', jobs],
      {
        SEALER_KEK: 'short',
      },
    );
    assert.match(noKek.stderr, /key-encryption key env:SEALER_KEK: .*32 bytes/);
    assert.ok(!noKek.stderr.includes('short'));
    await assert.rejects(() => fs.access(path.join(vaultDir, 'bco')), 'nothing was stored');
    await assert.rejects(() => fs.access(path.join(path.dirname(vaultDir), 'outbox')), 'nothing was audited');

    const ok = await set(['--tenant', 'bco', '--credential', 'bco-eseal-2']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /credential bco-eseal-2 stored/);
  },
);

test(
  'factors list shows tenant, credential, key and date but no secret',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { jobs, vaultDir, kek, env } = await setup();
    await sealer(['factors', 'set', '--tenant', 'bco', '--jobs', jobs], env, `${PIN}\n${TOTP_SECRET}\n`);
    const run = await sealer(['factors', 'list', '--jobs', jobs], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`vault ${vaultDir} \\(configured key ${kekIdOf(kek)}\\)`));
    assert.match(
      run.stdout,
      new RegExp(`tenant bco +credential bco-eseal +key ${kekIdOf(kek)} +stored \\d{4}-\\d\\d-\\d\\dT`),
    );
    assertNoSecret(run, [PIN, TOTP_SECRET, kek.toString('hex')]);
  },
);

test(
  'factors rotate-key re-encrypts from the configured key and reminds to switch it; --vault works without jobs',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { dir, jobs, vaultDir, kek, env } = await setup();
    await sealer(['factors', 'set', '--tenant', 'bco', '--jobs', jobs], env, `${PIN}\n${TOTP_SECRET}\n`);
    const next = crypto.randomBytes(32);
    const secrets = [PIN, TOTP_SECRET, kek.toString('hex'), kek.toString('base64'), next.toString('hex')];
    const run = await sealer(
      ['factors', 'rotate-key', '--tenant', 'bco', '--new-kek', 'env:NEXT_KEK', '--jobs', jobs],
      {
        ...env,
        NEXT_KEK: next.toString('base64'),
      },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`re-encrypted 1 factor file\\(s\\) of tenant bco in ${vaultDir}`));
    assert.match(run.stdout, /set signing\.custody\.kek in .*bco-nightly\.json to env:NEXT_KEK/);
    assertNoSecret(run, [PIN, TOTP_SECRET, kek.toString('hex'), next.toString('base64')]);
    const trail = auditDir(path.join(dir, 'outbox'), 'bco');
    assert.match(run.stdout, new RegExp(`audit entry key-rotated appended to ${trail} \\(seq 2\\)`));

    // One key-rotated entry, after the factors-stored one, naming both keys by fingerprint.
    await assertAuditIntact(jobs, 2);
    let audit = await bcoAudit(dir);
    assert.deepEqual(
      audit.entries.map((e) => e.type),
      ['factors-stored', 'key-rotated'],
    );
    const rotated = audit.entries[1]!;
    assert.equal(rotated.tenant, 'bco');
    assert.equal(rotated.fromKekFingerprint, kekIdOf(kek));
    assert.equal(rotated.toKekFingerprint, kekIdOf(next));
    assert.deepEqual(rotated.credentialIds, ['bco-eseal']);
    for (const secret of [...secrets, next.toString('base64')]) {
      assert.ok(!audit.text.includes(secret), 'the audit trail holds a secret');
    }

    // Nothing left under the old key: nothing re-encrypted, nothing audited.
    const again = await sealer(
      ['factors', 'rotate-key', '--tenant', 'bco', '--new-kek', 'env:NEXT_KEK', '--jobs', jobs],
      { ...env, NEXT_KEK: next.toString('base64') },
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /re-encrypted 0 factor file\(s\) .*\(1 already under it\)/);
    assert.doesNotMatch(again.stdout, /audit entry/);
    assert.equal((await bcoAudit(dir)).entries.length, 2);

    assert.equal((await new FactorVault(vaultDir, next).read('bco', 'bco-eseal')).pin, PIN);
    await assert.rejects(
      () => new FactorVault(vaultDir, kek).read('bco', 'bco-eseal'),
      /encrypted under key/,
    );
    const listed = await sealer(['factors', 'list', '--jobs', jobs], env);
    assert.match(listed.stdout, /NOT under the configured key/);

    // Back again with an explicit folder and keys from files, relative to where the command runs; the
    // job definitions there (the default --jobs) name the vault, so the tenant's trail records it.
    // Key files readable by their owner only, or loadKek refuses them.
    await fs.writeFile(path.join(dir, 'next.kek'), next.toString('hex'), { mode: 0o600 });
    await fs.writeFile(path.join(dir, 'first.kek'), kek.toString('base64'), { mode: 0o600 });
    const back = await sealer(
      [
        'factors',
        'rotate-key',
        '--vault',
        'vault',
        '--old-kek',
        'file:next.kek',
        '--new-kek',
        'file:first.kek',
      ],
      {},
      '',
      dir,
    );
    assert.equal(back.code, 0, back.stderr);
    assert.match(
      back.stdout,
      new RegExp(`re-encrypted 1 factor file\\(s\\) in ${vaultDir} .*to key ${kekIdOf(kek)}`),
    );
    assert.equal((await new FactorVault(vaultDir, kek).read('bco', 'bco-eseal')).totpSecret, TOTP_SECRET);
    assert.match(back.stdout, new RegExp(`audit entry key-rotated appended to ${trail} \\(seq 3\\)`));
    await assertAuditIntact(jobs, 3);
    audit = await bcoAudit(dir);
    assert.deepEqual(
      { ...audit.entries[2], seq: 0, time: '', prev: '', hash: '' },
      {
        seq: 0,
        time: '',
        tenant: 'bco',
        type: 'key-rotated',
        fromKekFingerprint: kekIdOf(next),
        toKekFingerprint: kekIdOf(kek),
        credentialIds: ['bco-eseal'],
        prev: '',
        hash: '',
      },
    );
    for (const secret of secrets) assert.ok(!audit.text.includes(secret), 'the audit trail holds a secret');

    // With --vault and no job definitions there is no outbox to record it in: the command says so.
    for (const jobsArg of ['no-such-folder', 'empty-jobs']) {
      await fs.mkdir(path.join(dir, 'empty-jobs'), { recursive: true });
      const [from, to] = jobsArg === 'no-such-folder' ? ['first', 'next'] : ['next', 'first'];
      const bare = await sealer(
        [
          'factors',
          'rotate-key',
          '--vault',
          'vault',
          '--old-kek',
          `file:${from}.kek`,
          '--new-kek',
          `file:${to}.kek`,
          '--jobs',
          jobsArg,
        ],
        {},
        '',
        dir,
      );
      assert.equal(bare.code, 0, bare.stderr);
      assert.match(bare.stdout, /re-encrypted 1 factor file\(s\)/);
      assert.match(bare.stdout, /no audit entry: no job definition names this vault for tenant bco/);
      assert.doesNotMatch(bare.stdout, /appended/);
      assert.equal((await bcoAudit(dir)).entries.length, 3);
    }
    await assertAuditIntact(jobs, 3);
  },
);

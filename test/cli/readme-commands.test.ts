// The READMEs' `sealer` command lines as a user pastes them: each names a command that exists and only
// flags its `--help` lists, in the one way of calling it that works on a fresh clone (`npx sealer` does
// not: npm links no `bin` of the project itself). The production-like block is checked, not run (it
// needs a provider, Redis and an approver); `npm run -s sealer -- --version` is run for real. Plus: the
// version, and that `--help` loads no command module (which is what keeps it fast).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { run } from '../../src/cli/main';
import { SEALER_INVOCATION } from '../../src/common/sealer-command';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const execFileP = promisify(execFile);
// dist/test/cli -> the repository (package.json, README.md; dist/ holds only compiled code).
const ROOT = path.join(__dirname, '..', '..', '..');
const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const READMES = ['README.md', 'src/sandbox/README.md'];

async function sealerInProcess(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await run(['node', 'sealer', ...args], {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

/** The ```sh blocks of a Markdown file, backslash-continued lines joined. */
function shellBlocks(markdown: string): string[][] {
  const blocks: string[][] = [];
  for (const m of markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```$/gm)) {
    blocks.push(m[1]!.replace(/\\\n/g, ' ').split('\n').filter(Boolean));
  }
  return blocks;
}

/**
 * One shell line as simple commands, each a list of words: quotes kept together (and removed), split at
 * | & ; && ||, a comment dropped. Enough for the READMEs' lines (no heredocs, no nesting beyond "$(...)").
 */
function simpleCommands(line: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word: string | undefined;
  const endWord = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  const endCommand = () => {
    endWord();
    if (words.length) commands.push(words);
    words = [];
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'" || c === '"') {
      const close = line.indexOf(c, i + 1);
      assert.ok(close > i, `unclosed ${c} in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, close);
      i = close;
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if (c === '#' && word === undefined) {
      break;
    } else if ('|&;'.includes(c)) {
      endCommand();
      if (line[i + 1] === c) i++;
    } else {
      word = (word ?? '') + c;
    }
  }
  endCommand();
  return commands;
}

interface Invocation {
  file: string;
  line: string;
  args: string[];
}

/** Every `sealer` invocation in the READMEs' shell blocks; a wrong way of calling it fails the test. */
async function readmeInvocations(): Promise<Invocation[]> {
  const prefix = SEALER_INVOCATION.split(' ');
  const found: Invocation[] = [];
  for (const file of READMES) {
    for (const block of shellBlocks(await fs.readFile(path.join(ROOT, file), 'utf8'))) {
      for (const line of block) {
        for (const words of simpleCommands(line)) {
          const at = words.indexOf('sealer');
          if (at < 0) continue;
          const lead = words.slice(0, at + 1).join(' ');
          assert.ok(
            words.slice(0, prefix.length).join(' ') === SEALER_INVOCATION,
            `${file}: "${line}" calls the command as "${lead}", not "${SEALER_INVOCATION} <command>"`,
          );
          found.push({ file, line, args: words.slice(prefix.length) });
        }
      }
    }
  }
  return found;
}

/** The command path an argument list names (e.g. ["factors", "set"]) and that command's --help. */
async function commandOf(args: string[]): Promise<{ path: string[]; help: string }> {
  const names: string[] = [];
  let help = (await sealerInProcess(['--help'])).stdout;
  for (const word of args) {
    if (word.startsWith('-')) break;
    const r = await sealerInProcess([...names, word, '--help']);
    // A positional argument (a job name, a file) shows the parent's help again, or is an error.
    if (r.code !== 0 || !r.stdout.startsWith(`Usage: sealer ${[...names, word].join(' ')} `)) break;
    names.push(word);
    help = r.stdout;
  }
  return { path: names, help };
}

test(
  'package.json has the script the READMEs call, and it runs on a checkout once built',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
      bin: Record<string, string>;
      scripts: Record<string, string>;
    };
    assert.equal(SEALER_INVOCATION, 'npm run -s sealer --');
    assert.equal(pkg.scripts.sealer, `node ${pkg.bin.sealer}`);
    // Through npm, as a user would: only the version on stdout (-s: no "> nightly-eseal-worker" banner).
    const { stdout } = await execFileP('npm', ['run', '-s', 'sealer', '--', '--version'], { cwd: ROOT });
    assert.equal(stdout, `${pkg.version}\n`);
    const inProcess = await sealerInProcess(['--version']);
    assert.equal(inProcess.code, 0);
    assert.equal(inProcess.stdout, `${pkg.version}\n`);
  },
);

test(
  "every sealer command line in the READMEs' shell blocks names a real command and only its flags",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const invocations = await readmeInvocations();
    // The production-like block has 6 (a 7th is in a comment); the sandbox README's fault examples 2.
    assert.ok(invocations.filter((i) => i.file === 'README.md').length >= 6, JSON.stringify(invocations));
    assert.ok(invocations.filter((i) => i.file !== 'README.md').length >= 2, JSON.stringify(invocations));
    for (const { file, line, args } of invocations) {
      const { path: names, help } = await commandOf(args);
      assert.ok(names.length > 0, `${file}: "${line}" names no sealer command`);
      for (const arg of args.filter((a) => a.startsWith('--'))) {
        const flag = arg.split('=')[0]!;
        assert.match(
          help,
          new RegExp(`(^|[\\s,])${flag}([\\s,=]|$)`, 'm'),
          `${file}: "${line}": sealer ${names.join(' ')} has no ${flag}`,
        );
      }
    }
  },
);

test(
  "the README's command table: each row's command exists with the flags its first column shows",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
    const rows = [...readme.matchAll(/^\| `sealer ([^`]+)` \|/gm)].map((m) => m[1]!);
    assert.ok(rows.length >= 15, `${rows.length} rows`);
    for (const row of rows) {
      const words = row
        .replace(/\\\|/g, ' ')
        .replace(/[[\]|]/g, ' ')
        .split(/\s+/)
        .filter(Boolean);
      const { path: names, help } = await commandOf(words);
      assert.ok(names.length > 0, `README row "sealer ${row}" names no command`);
      for (const flag of words.filter((w) => w.startsWith('--'))) {
        assert.match(
          help,
          new RegExp(`(^|[\\s,])${flag}([\\s,=]|$)`, 'm'),
          `sealer ${names.join(' ')}: ${flag}`,
        );
      }
    }
  },
);

test('no inline `npx sealer <command>` is left in the READMEs', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const file of READMES) {
    const text = await fs.readFile(path.join(ROOT, file), 'utf8');
    assert.doesNotMatch(text, /`npx sealer \w/, file);
  }
});

test(
  '--help loads no command module (so it starts fast), and a command loads its own',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // The modules in require.cache after a run, from a fresh process: nothing of Redis, BullMQ, pkijs
    // or the commands for --help.
    const loaded = async (args: string[]) => {
      const script = `
        const { run } = require(${JSON.stringify(CLI)});
        const quiet = { stdout: { write() {} }, stderr: { write() {} } };
        run(['node', 'sealer', ...${JSON.stringify(args)}], quiet).then(() =>
          process.stdout.write('\\n@@modules ' + JSON.stringify(Object.keys(require.cache))));`;
      const { stdout } = await execFileP(process.execPath, ['-e', script]);
      // After a marker: a command may print to stdout itself.
      return JSON.parse(stdout.slice(stdout.lastIndexOf('\n@@modules ') + 11)) as string[];
    };
    const heavy = /[/\\](cli[/\\]commands|bullmq|ioredis|pkijs|pdf-lib|piscina|pino)[/\\]/;
    for (const args of [['--help'], ['--version'], ['work', '--help'], ['factors', 'set', '--help']]) {
      const modules = await loaded(args);
      assert.deepEqual(
        modules.filter((m) => heavy.test(m)),
        [],
        `${args.join(' ')} loaded command code`,
      );
    }
    const verify = await loaded(['verify', '/nonexistent/x.pdf']);
    assert.ok(
      verify.some((m) => /cli[/\\]commands[/\\]verify\.js$/.test(m)),
      'verify runs from its module, loaded on demand',
    );
  },
);

// Reading secrets a person types (PIN, OTP, TOTP secret): never from argv, which other users of the
// machine can read in the process list. From a terminal with echo off, or line by line from a pipe.
import readline from 'node:readline';
import { Writable } from 'node:stream';

/** One line from the terminal with echo off: the prompt is written, then output is muted. */
export function promptHidden(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (!muted) process.stderr.write(chunk);
      callback();
    },
  });
  const rl = readline.createInterface({ input: process.stdin, output, terminal: true });
  return new Promise<string>((resolve, reject) => {
    let answered = false;
    rl.on('SIGINT', () => rl.close());
    rl.on('close', () => {
      process.stderr.write('\n');
      if (!answered) reject(new Error('cancelled'));
    });
    rl.question(`${question}: `, (answer) => {
      answered = true;
      rl.close();
      resolve(answer.trim());
    });
    muted = true;
  });
}

/** Lines of stdin read one at a time on demand (for answers piped in rather than typed). */
export class StdinLines {
  private readonly lines: AsyncIterator<string>;
  private readonly rl = readline.createInterface({ input: process.stdin, terminal: false });

  constructor() {
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  async next(what: string): Promise<string> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`stdin ended before the ${what} was given`);
    return r.value.trim();
  }

  close(): void {
    this.rl.close();
    process.stdin.pause();
  }
}

/** Asks for each secret at a hidden prompt on a terminal, or takes the next stdin line otherwise. */
export function secretReader(): { ask: (label: string) => Promise<string>; close: () => void } {
  if (process.stdin.isTTY) return { ask: (label) => promptHidden(label), close: () => undefined };
  const lines = new StdinLines();
  return { ask: (label) => lines.next(label), close: () => lines.close() };
}

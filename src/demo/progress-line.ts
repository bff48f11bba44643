// Progress for long commands: a redrawn bar on a terminal; anywhere else (a pipe, CI, a log file) one line
// per stage when it ends, since carriage-return redraws turn a captured log into one long unreadable line.
import cliProgress from 'cli-progress';

export class ProgressLine {
  private bar?: cliProgress.SingleBar;
  private last?: { done: number; total: number };

  constructor(
    private readonly label: string,
    private readonly stream: { write(text: string): unknown; isTTY?: boolean } = process.stderr,
  ) {
    if (stream.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${label} [{bar}] {value}/{total} invoices`,
          stream: stream as NodeJS.WriteStream,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  update(done: number, total: number): void {
    if (total === 0) return;
    this.last = { done, total };
    if (!this.bar) return;
    if (!this.bar.isActive) this.bar.start(total, done);
    this.bar.setTotal(total);
    this.bar.update(done);
  }

  /** Ends the stage: stops the bar, or (not on a terminal) writes its one line. */
  done(): void {
    if (this.bar) {
      this.bar.stop();
      return;
    }
    if (this.last) this.stream.write(`${this.label}: ${this.last.done}/${this.last.total} invoices\n`);
  }
}

// Progress for long commands: a redrawn bar on a terminal, a line per quarter otherwise (CI, logs).
import cliProgress from 'cli-progress';

export class ProgressLine {
  private bar?: cliProgress.SingleBar;
  private lastQuarter = -1;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    if (stream.isTTY) {
      this.bar = new cliProgress.SingleBar(
        { format: `${label} [{bar}] {value}/{total} invoices`, stream, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  update(done: number, total: number): void {
    if (total === 0) return;
    if (this.bar) {
      if (!this.bar.isActive) this.bar.start(total, done);
      this.bar.setTotal(total);
      this.bar.update(done);
      return;
    }
    const quarter = Math.floor((done / total) * 4);
    if (quarter > this.lastQuarter) {
      this.lastQuarter = quarter;
      this.stream.write(`${this.label}: ${done}/${total} invoices\n`);
    }
  }

  done(): void {
    this.bar?.stop();
  }
}

/**
 * A one-line progress bar for long CLI operations (`mss store migrate`), written to a stream (stderr).
 * On a terminal it redraws one line with `\r` (at most ten times a second); elsewhere (a pipe, a log file)
 * it prints a plain line at each tenth of the way, so logs stay readable.
 */
export class ProgressBar {
  #lastDraw = 0;
  #lastTenth = -1;
  #drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly label: string,
    private readonly width = 30,
  ) {}

  update(done: number, total: number, detail = ''): void {
    const ratio = total === 0 ? 1 : Math.min(1, done / total);
    const percent = Math.floor(ratio * 100);
    if (this.stream.isTTY) {
      const now = Date.now();
      if (now - this.#lastDraw < 100 && ratio < 1) return;
      this.#lastDraw = now;
      const filled = Math.round(ratio * this.width);
      const bar = '#'.repeat(filled) + '-'.repeat(this.width - filled);
      this.stream.write(`\r${this.label} [${bar}] ${String(percent).padStart(3)}% ${done}/${total} ${detail}`.padEnd(100));
      this.#drawn = true;
      return;
    }
    const tenth = Math.floor(ratio * 10);
    if (tenth === this.#lastTenth) return;
    this.#lastTenth = tenth;
    this.stream.write(`${this.label}: ${percent}% (${done}/${total} rows)${detail ? ` ${detail}` : ''}\n`);
  }

  /** Ends the bar's line (terminal only). */
  finish(): void {
    if (this.#drawn) this.stream.write('\n');
    this.#drawn = false;
  }
}

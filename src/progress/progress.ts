/**
 * One progress line per kernel. On a TTY the lines are redrawn in place with a
 * bar of finished steps; otherwise each change is a plain line, so CI logs
 * and pipes stay readable. Goes to stderr, leaving stdout for results/--json.
 */
export type Outcome = 'done' | 'cached' | 'skipped' | 'failed';

export interface Progress {
  start(id: string, label: string, totalSteps: number): void;
  step(id: string, name: string): void;
  finish(id: string, outcome: Outcome, detail?: string): void;
}

export const silentProgress: Progress = { start() {}, step() {}, finish() {} };

interface Line {
  label: string;
  total: number;
  done: number;
  step: string;
  started: number;
  final?: string;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export class PlainProgress implements Progress {
  private lines = new Map<string, Line>();
  constructor(private readonly out: NodeJS.WritableStream = process.stderr) {}

  start(id: string, label: string, totalSteps: number): void {
    this.lines.set(id, { label, total: totalSteps, done: 0, step: 'queued', started: Date.now() });
    this.out.write(`${label}: started\n`);
  }
  step(id: string, name: string): void {
    const l = this.lines.get(id);
    if (!l) return;
    l.done++;
    l.step = name;
    this.out.write(`${l.label}: ${name}\n`);
  }
  finish(id: string, outcome: Outcome, detail?: string): void {
    const l = this.lines.get(id);
    if (!l) return;
    this.out.write(`${l.label}: ${outcome} in ${secs(Date.now() - l.started)}${detail ? ` (${detail})` : ''}\n`);
  }
}

export class TtyProgress implements Progress {
  private lines = new Map<string, Line>();
  private drawn = 0;
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  start(id: string, label: string, totalSteps: number): void {
    this.lines.set(id, { label, total: totalSteps, done: 0, step: 'queued', started: Date.now() });
    if (!this.timer) this.timer = setInterval(() => this.draw(), 200).unref();
    this.draw();
  }
  step(id: string, name: string): void {
    const l = this.lines.get(id);
    if (!l) return;
    l.done = Math.min(l.total, l.done + 1);
    l.step = name;
    this.draw();
  }
  finish(id: string, outcome: Outcome, detail?: string): void {
    const l = this.lines.get(id);
    if (!l) return;
    l.done = l.total;
    l.final = `${outcome} in ${secs(Date.now() - l.started)}${detail ? ` (${detail})` : ''}`;
    this.draw();
    if ([...this.lines.values()].every((x) => x.final) && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
  private draw(): void {
    const width = 20;
    let text = this.drawn ? `\x1b[${this.drawn}A` : '';
    for (const l of this.lines.values()) {
      const filled = Math.round((l.done / Math.max(1, l.total)) * width);
      const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
      const state = l.final ?? `${l.step} ${secs(Date.now() - l.started)}`;
      text += `\x1b[2K${bar} ${l.label}: ${state}\n`;
    }
    this.drawn = this.lines.size;
    this.out.write(text);
  }
}

/**
 * stream: where plain lines go. DKMS's own commands print their progress on
 * stdout, so scripts that silence a step with `> /dev/null` (common.postinst
 * does for `dkms build`) see only errors; bundle commands keep stdout for
 * results. The redrawn TTY display always uses stderr.
 */
export function makeProgress(quiet: boolean, stream: 'stdout' | 'stderr' = 'stderr'): Progress {
  if (quiet) return silentProgress;
  if (process.stderr.isTTY) return new TtyProgress();
  return new PlainProgress(stream === 'stdout' ? process.stdout : process.stderr);
}

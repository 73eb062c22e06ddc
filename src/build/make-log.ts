/**
 * make.log: one per (module, kernel, arch), so concurrent kernels never
 * interleave. The header is DKMS 3.0.10's; each step is framed the way DKMS
 * 3.4.3 frames it (description, command, output, exit code, elapsed time).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface StepOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
}

const pad2 = (n: number) => String(n).padStart(2, '0');
function elapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${pad2(Math.floor(s / 3600))}:${pad2(Math.floor(s / 60) % 60)}:${pad2(s % 60)}`;
}

export class MakeLog {
  /** A write error (disk full, the file's directory removed under us) must fail the build, not crash the process. */
  private failure: Error | null = null;

  private constructor(
    readonly path: string,
    private readonly out: WriteStream,
  ) {
    out.on('error', (e) => {
      this.failure ??= e;
    });
  }

  static async create(path: string, title: string): Promise<MakeLog> {
    await mkdir(dirname(path), { recursive: true });
    const out = createWriteStream(path, { flags: 'w' });
    const log = new MakeLog(path, out);
    log.write(`${title}\n${new Date().toUTCString()}\n`);
    return log;
  }

  write(text: string): void {
    this.out.write(text);
  }

  note(description: string): void {
    this.write(`\n${description}\n`);
  }

  /** Runs a bash script with all output into the log; resolves to its exit code. */
  async step(description: string, script: string, shownCommand: string, opts: StepOptions): Promise<number> {
    this.write(`\n${description}\n# command: ${shownCommand}\n`);
    const started = Date.now();
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn('/bin/bash', ['-c', script], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (d: Buffer) => this.out.write(d));
      child.stderr.on('data', (d: Buffer) => this.out.write(d));
      child.on('error', reject);
      child.on('close', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
    });
    this.write(`\n# exit code: ${code}\n# elapsed time: ${elapsed(Date.now() - started)}\n${'-'.repeat(64)}\n`);
    return code;
  }

  async close(): Promise<void> {
    if (!this.out.closed && !this.out.destroyed) await new Promise<void>((resolve) => this.out.end(() => resolve()));
    if (this.failure) throw new Error(`cannot write ${this.path}: ${this.failure.message}`);
  }
}

/**
 * make.log: one per (module, kernel, arch), so concurrent kernels never
 * interleave. The header is DKMS 3.0.10's; each step is framed the way DKMS
 * 3.4.3 frames it (description, command, output, exit code, elapsed time).
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
const pad2 = (n) => String(n).padStart(2, '0');
function elapsed(ms) {
    const s = Math.floor(ms / 1000);
    return `${pad2(Math.floor(s / 3600))}:${pad2(Math.floor(s / 60) % 60)}:${pad2(s % 60)}`;
}
export class MakeLog {
    path;
    out;
    constructor(path, out) {
        this.path = path;
        this.out = out;
    }
    static async create(path, title) {
        await mkdir(dirname(path), { recursive: true });
        const out = createWriteStream(path, { flags: 'w' });
        const log = new MakeLog(path, out);
        log.write(`${title}\n${new Date().toUTCString()}\n`);
        return log;
    }
    write(text) {
        this.out.write(text);
    }
    note(description) {
        this.write(`\n${description}\n`);
    }
    /** Runs a bash script with all output into the log; resolves to its exit code. */
    async step(description, script, shownCommand, opts) {
        this.write(`\n${description}\n# command: ${shownCommand}\n`);
        const started = Date.now();
        const code = await new Promise((resolve, reject) => {
            const child = spawn('/bin/bash', ['-c', script], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
            child.stdout.on('data', (d) => this.out.write(d));
            child.stderr.on('data', (d) => this.out.write(d));
            child.on('error', reject);
            child.on('close', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
        });
        this.write(`\n# exit code: ${code}\n# elapsed time: ${elapsed(Date.now() - started)}\n${'-'.repeat(64)}\n`);
        return code;
    }
    async close() {
        await new Promise((resolve, reject) => this.out.end((err) => (err ? reject(err) : resolve())));
    }
}

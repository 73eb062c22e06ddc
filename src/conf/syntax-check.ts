/**
 * `bash -n` before sourcing. DKMS skips this and a broken conf silently yields
 * partial values; kbundle stops with the file and line instead.
 */
import { spawn } from 'node:child_process';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

/**
 * Turns bash's "FILE: line N: MSG" into "FILE:N: MSG", with bash's `x'
 * quoting made 'x'. Returns null when the text holds no such line.
 */
export function formatSyntaxError(file: string, bashStderr: string): string | null {
  const lines = bashStderr.split('\n').filter((l) => l.startsWith(`${file}: line `));
  const m = /^: line (\d+): (.*)$/.exec((lines[0] ?? '').slice(file.length));
  if (!m) return null;
  const text = m[2]!.replace(/`([^']*)'/g, "'$1'");
  return `${file}:${m[1]}: ${text}`;
}

export async function checkBashSyntax(file: string): Promise<void> {
  // extglob on, as in DKMS: it changes how patterns like @(a|b) parse.
  const child = spawn('bash', ['-O', 'extglob', '-n', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  const err: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? 1));
  });
  if (code === 0) return;
  const stderr = Buffer.concat(err).toString('utf8');
  const msg = formatSyntaxError(file, stderr) ?? `${file}: ${stderr.trim() || `bash -n exited ${code}`}`;
  throw new KbundleError(msg, ExitCode.BadConf);
}

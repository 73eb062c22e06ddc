/**
 * `bash -n` before sourcing. DKMS skips this and a broken conf silently yields
 * partial values; kbundle stops with the file and line instead.
 */
import { spawn } from 'node:child_process';
import { CONF_LIMITS } from './limits.js';
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

export async function checkBashSyntax(file: string, timeoutMs: number = CONF_LIMITS.timeoutMs): Promise<void> {
  // extglob on, as in DKMS: it changes how patterns like @(a|b) parse.
  const child = spawn('bash', ['-O', 'extglob', '-n', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  const err: Buffer[] = [];
  let errBytes = 0;
  child.stderr.on('data', (b: Buffer) => {
    if (errBytes < CONF_LIMITS.stderrBytes) err.push(b);
    errBytes += b.length;
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, sig) => resolve([c, sig]));
  }).finally(() => clearTimeout(timer));
  if (code === 0) return;
  if (timedOut) throw new KbundleError(`${file}: bash -n did not finish within ${timeoutMs / 1000} s; stopped.`, ExitCode.BadConf);
  // Deeply nested $( ... ) overflows bash's parser stack before it can say so.
  if (signal) throw new KbundleError(`${file}: bash -n crashed (${signal}), as it does on very deeply nested code.`, ExitCode.BadConf);
  const stderr = Buffer.concat(err).toString('utf8');
  const msg = formatSyntaxError(file, stderr) ?? `${file}: ${stderr.trim() || `bash -n exited ${code}`}`;
  // bash quotes the offending token, which in a hostile file can be megabytes long.
  throw new KbundleError(msg.length > 2000 ? `${msg.slice(0, 2000)}...` : msg, ExitCode.BadConf);
}

/**
 * Runs SAFE_SOURCE_PROGRAM in a fresh bash and returns its records. The only
 * effectful part of conf reading besides the syntax check.
 */
import { spawn } from 'node:child_process';
import { SAFE_SOURCE_PROGRAM } from './bash-program.js';
import { killTree } from './kill-tree.js';
import { CONF_LIMITS } from './limits.js';
import { parseRecords, type SourceRecords } from './records.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

export interface SourceRequest {
  whitelist: readonly string[];
  /** Shell variables (not exported) visible to the sourced files. */
  vars: Record<string, string>;
  files: string[];
  /** "ARRAY:subjectvar" pairs whose regex verdicts to report. */
  regex?: string[];
  directives?: string[];
  cwd: string;
  /** 'inherit' (default) passes the files' stderr to ours, as DKMS does. */
  stderr?: 'inherit' | 'capture';
  /** Default CONF_LIMITS.timeoutMs. */
  timeoutMs?: number;
}

export interface SourceResult extends SourceRecords {
  stderr: string;
}

export async function runSafeSource(req: SourceRequest): Promise<SourceResult> {
  const vars = Object.entries(req.vars).map(([k, v]) => `${k}=${v}`);
  const args = [
    '-c', SAFE_SOURCE_PROGRAM, 'dkms',
    req.whitelist.join(' '),
    String(vars.length), ...vars,
    String(req.files.length), ...req.files,
    (req.regex ?? []).join(' '),
    ...(req.directives ?? []),
  ];
  // BASH_ENV would make bash source a file of the user's before ours.
  const env = { ...process.env };
  delete env.BASH_ENV;
  const capture = req.stderr === 'capture';
  const child = spawn('bash', args, { cwd: req.cwd, env, stdio: ['ignore', 'pipe', capture ? 'pipe' : 'inherit'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let outBytes = 0;
  let errBytes = 0;
  let stopped: 'output' | 'timeout' | null = null;
  // A command the conf left running elsewhere (its own session) may still
  // hold the pipes; destroying our ends lets 'close' fire anyway.
  const stop = (why: 'output' | 'timeout') => {
    stopped ??= why;
    // Once Node has reaped bash its pid may be reused; its orphans are init's by then anyway.
    if (child.exitCode === null && child.signalCode === null) killTree(child.pid);
    child.stdout?.destroy();
    child.stderr?.destroy();
  };
  child.stdout!.on('data', (b: Buffer) => {
    outBytes += b.length;
    if (outBytes > CONF_LIMITS.outputBytes) stop('output');
    else out.push(b);
  });
  child.stderr?.on('data', (b: Buffer) => {
    if (errBytes < CONF_LIMITS.stderrBytes) err.push(b.subarray(0, CONF_LIMITS.stderrBytes - errBytes));
    errBytes += b.length;
  });
  const timeoutMs = req.timeoutMs ?? CONF_LIMITS.timeoutMs;
  const timer = setTimeout(() => stop('timeout'), timeoutMs);
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
  }).finally(() => clearTimeout(timer));
  const stderr = Buffer.concat(err).toString('utf8');
  const files = req.files.join(', ');
  if (stopped === 'timeout') {
    throw new KbundleError(`sourcing ${files} did not finish within ${timeoutMs / 1000} s; stopped.`, ExitCode.BadConf, stderr ? [stderr.trimEnd()] : []);
  }
  if (stopped === 'output') {
    throw new KbundleError(`sourcing ${files}: its values add up to more than ${CONF_LIMITS.outputBytes / (1024 * 1024)} MiB; stopped.`, ExitCode.BadConf);
  }
  if (code !== 0) {
    throw new KbundleError(`sourcing ${files} failed (bash exit ${code})`, ExitCode.BadConf, stderr ? [stderr.trimEnd()] : []);
  }
  try {
    return { ...parseRecords(Buffer.concat(out)), stderr };
  } catch (e) {
    // Only a conf that writes to our record channel itself gets here.
    throw new KbundleError(`sourcing ${files}: ${(e as Error).message}`, ExitCode.BadConf);
  }
}

/**
 * Runs SAFE_SOURCE_PROGRAM in a fresh bash and returns its records. The only
 * effectful part of conf reading besides the syntax check.
 */
import { spawn } from 'node:child_process';
import { SAFE_SOURCE_PROGRAM } from './bash-program.js';
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
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => err.push(b));
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
  });
  const stderr = Buffer.concat(err).toString('utf8');
  if (code !== 0) {
    throw new KbundleError(`sourcing ${req.files.join(', ')} failed (bash exit ${code})`, ExitCode.BadConf, stderr ? [stderr.trimEnd()] : []);
  }
  return { ...parseRecords(Buffer.concat(out)), stderr };
}

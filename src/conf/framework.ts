/**
 * /etc/dkms/framework.conf and framework.conf.d/*.conf, sourced by bash with
 * DKMS's whitelist (read_framework_conf).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { rejectionMessage } from './limits.js';
import { runSafeSource } from './run-bash.js';
import { FRAMEWORK_VARIABLES } from './whitelist.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

export interface FrameworkConf {
  sourceTree?: string;
  dkmsTree?: string;
  installTree?: string;
  tmpLocation?: string;
  verbose?: string;
  symlinkModules?: string;
  autoinstallAllKernels?: string;
  modprobeOnInstall?: string;
  signFile?: string;
  mokSigningKey?: string;
  mokCertificate?: string;
  trySignModules?: string;
  parallelJobs?: number;
  compressGzipOpts?: string;
  compressXzOpts?: string;
  compressZstdOpts?: string;
  buildEnvironment?: string;
  postTransaction?: string;
}

const camel = (s: string): string => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** The files DKMS reads, in its order: the main file, then conf.d/*.conf sorted bytewise. */
export async function frameworkFiles(path: string): Promise<string[]> {
  const dir = join(dirname(path), 'framework.conf.d');
  let extra: string[] = [];
  try {
    extra = (await readdir(dir)).filter((n) => n.endsWith('.conf')).sort().map((n) => join(dir, n));
  } catch {
    // no conf.d is the normal case
  }
  return [path, ...extra];
}

/**
 * Reads the framework files that exist ({} when none). kernelver, when given,
 * is visible to them as $kernelver: DKMS reads the signing variables only once
 * it knows the kernel, so paths like /var/lib/dkms/mok-$kernelver.key work.
 */
export async function readFrameworkConf(path = '/etc/dkms/framework.conf', kernelver?: string): Promise<FrameworkConf> {
  const files = (await frameworkFiles(path)).filter((f) => existsSync(f));
  // Nothing to source: skip the bash run (it is most of a `status` run's cost).
  if (files.length === 0) return {};
  const literal = await literalAssignments(files);
  if (literal) return typed(literal, files);
  const r = await runSafeSource({
    whitelist: FRAMEWORK_VARIABLES,
    vars: kernelver ? { kernelver } : {},
    files,
    cwd: '/',
  });
  if (r.rejected.length) throw new KbundleError(rejectionMessage(files, r.rejected), ExitCode.General);
  const values = new Map<string, string>();
  for (const [name, arr] of r.raw) {
    const v = arr.get(0);
    if (v !== undefined) values.set(name, v);
  }
  return typed(values, files);
}

function typed(values: Map<string, string>, files: string[]): FrameworkConf {
  const out: Record<string, string | number> = {};
  for (const [name, v] of values) {
    if (v === '' || !FRAMEWORK_VARIABLES.includes(name)) continue;
    out[camel(name)] = v;
  }
  if (out.parallelJobs !== undefined) {
    const n = Number(out.parallelJobs);
    if (!/^\d+$/.test(String(out.parallelJobs)) || n < 1) {
      throw new KbundleError(`${files.join(', ')}: parallel_jobs must be a whole number >= 1, got "${out.parallelJobs}".`, ExitCode.General);
    }
    out.parallelJobs = n;
  }
  return out as FrameworkConf;
}

/** One line of a framework file that bash would read as nothing but `name=literal`. */
const LITERAL_LINE = /^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"$`\\!*?[]*)"|'([^'"$`\\!*?[]*)'|([^\s"'$`\\;&|<>(){}*?[\]~#!]*))(?:[ \t]+#.*)?[ \t]*$/;

/**
 * The values of framework files that hold only comments, blank lines and
 * literal assignments (Debian's framework.conf is all comments), read without
 * bash: sourcing them could not give anything else, and the bash run is most
 * of a short command's cost. Anything else (an expansion, a command, a
 * continuation line) returns null and the files are sourced as DKMS does.
 */
export async function literalAssignments(files: string[]): Promise<Map<string, string> | null> {
  const values = new Map<string, string>();
  for (const f of files) {
    const text = await readFile(f, 'utf8');
    for (const line of text.split('\n')) {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) continue;
      const m = LITERAL_LINE.exec(line);
      if (!m) return null;
      // safe_source echoes each value unquoted and sources that line back:
      // runs of blanks become one space, leading and trailing ones go.
      const v = m[2] ?? m[3] ?? m[4] ?? '';
      values.set(m[1]!, v.split(/[ \t\n]+/).filter(Boolean).join(' '));
    }
  }
  return values;
}

/**
 * Puts a DropinPlan in place and takes it back: dpkg-divert(1) moves each of
 * Debian's files aside, then kbundle's script is written at the path.
 * Each step is idempotent and install/uninstall check the state before every
 * step, so re-running either after an interruption finishes it (the order
 * leaves only states that both can continue from: diverted with no script yet,
 * or script removed and still diverted).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDurable, writeFileDurable } from '../util/atomic.js';
import { KbundleError } from '../util/errors.js';
import { loadExeca } from '../util/execa.js';
import { DROPIN_MARK, rooted, type Diversion, type DropinPlan } from './plan.js';
import { ExitCode } from '../util/exit-codes.js';

export interface DiversionState {
  path: string;
  divertTo: string;
  /** dpkg-divert has a local diversion of path to divertTo. */
  diverted: boolean;
  /** The file at path is kbundle's script (and its text is the planned one). */
  script: 'kbundle' | 'kbundle-outdated' | 'other' | 'missing';
}

const rootArgs = (plan: DropinPlan): string[] => (plan.root === '/' ? [] : [`--root=${plan.root}`]);

async function dpkgDivert(plan: DropinPlan, args: string[]): Promise<string> {
  const execa = await loadExeca();
  const r = await execa('dpkg-divert', [...rootArgs(plan), ...args], { reject: false });
  if (r.exitCode !== 0) throw new KbundleError(`dpkg-divert ${args.join(' ')} failed: ${String(r.stderr || r.stdout).trim()}`, ExitCode.DiversionConflict);
  return String(r.stdout).trim();
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

export async function diversionState(plan: DropinPlan, d: Diversion): Promise<DiversionState> {
  const truename = await dpkgDivert(plan, ['--truename', d.path]);
  const owner = await dpkgDivert(plan, ['--listpackage', d.path]);
  const text = await readText(rooted(plan, d.path));
  const script = text === null ? 'missing' : !text.includes(DROPIN_MARK) ? 'other' : text === d.script ? 'kbundle' : 'kbundle-outdated';
  return { path: d.path, divertTo: d.divertTo, diverted: owner === 'LOCAL' && truename === d.divertTo, script };
}

/** dpkg's own record of whether Debian's dkms package is installed in the root. */
export async function dkmsPackageInstalled(plan: DropinPlan): Promise<boolean> {
  const execa = await loadExeca();
  const r = await execa('dpkg-query', [`--admindir=${join(plan.root, 'var/lib/dpkg')}`, '-W', '-f=${db:Status-Status}', 'dkms'], { reject: false });
  return r.exitCode === 0 && String(r.stdout).trim() === 'installed';
}

export async function installDropin(plan: DropinPlan, say: (line: string) => void): Promise<DiversionState[]> {
  if (!(await dkmsPackageInstalled(plan))) {
    throw new KbundleError(
      `Debian's dkms package is not installed${plan.root === '/' ? '' : ` in ${plan.root}`}. The drop-in replaces its engine (/usr/sbin/dkms) and keeps its package scripts and kernel hooks: install it first (apt-get install dkms).`,
      ExitCode.NoDkmsPackage,
    );
  }
  for (const d of plan.diversions) {
    let s = await diversionState(plan, d);
    if (s.script === 'other' && s.diverted) {
      throw new KbundleError(`${d.path} is diverted to ${d.divertTo} but holds a file that is not kbundle's; move it away first.`, ExitCode.DiversionConflict);
    }
    if (!s.diverted) {
      await dpkgDivert(plan, ['--local', '--rename', '--divert', d.divertTo, '--add', d.path]);
      s = await diversionState(plan, d);
    }
    if (s.script !== 'kbundle') await writeFileDurable(rooted(plan, d.path), d.script, { mode: 0o755 });
    say(`${d.path}: kbundle (Debian's file kept as ${d.divertTo})`);
  }
  return Promise.all(plan.diversions.map((d) => diversionState(plan, d)));
}

export async function uninstallDropin(plan: DropinPlan, say: (line: string) => void): Promise<DiversionState[]> {
  for (const d of plan.diversions) {
    const s = await diversionState(plan, d);
    if (s.script === 'other' && !s.diverted) {
      say(`${d.path}: not kbundle's, left as it is`);
      continue;
    }
    if (s.script === 'kbundle' || s.script === 'kbundle-outdated') await removeDurable(rooted(plan, d.path));
    if (s.diverted) await dpkgDivert(plan, ['--local', '--rename', '--divert', d.divertTo, '--remove', d.path]);
    say(`${d.path}: Debian's again`);
  }
  return Promise.all(plan.diversions.map((d) => diversionState(plan, d)));
}

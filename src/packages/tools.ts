/**
 * The external tools each format needs, and one way to run them: with a
 * fixed environment (LC_ALL=C, TZ=UTC, SOURCE_DATE_EPOCH) so their output
 * does not depend on the caller's locale or clock.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { loadExeca } from '../util/execa.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

/** Tool name → the Debian package that ships it. */
export const TOOL_PACKAGES: Record<string, string> = {
  'dpkg-deb': 'dpkg',
  'dpkg-buildpackage': 'dpkg-dev',
  'dpkg-source': 'dpkg-dev',
  'dpkg-gencontrol': 'dpkg-dev',
  rpmbuild: 'rpm',
  createrepo_c: 'createrepo-c',
  xorriso: 'xorriso',
  tar: 'tar',
  gzip: 'gzip',
  xz: 'xz-utils',
  zstd: 'zstd',
  make: 'make',
};

function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    try {
      accessSync(join(dir || '.', tool), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/** Throws one line naming the Debian package when a tool is missing. */
export function requireTools(...tools: string[]): void {
  for (const t of tools) {
    if (!onPath(t)) {
      throw new KbundleError(`${t} not found: install the Debian package ${TOOL_PACKAGES[t] ?? t} (apt install ${TOOL_PACKAGES[t] ?? t}).`, ExitCode.MissingTool);
    }
  }
}

export interface RunOptions {
  cwd?: string;
  epoch: number;
  env?: Record<string, string>;
}

/** Runs a tool; on failure, throws with the tool's own output as detail lines. */
export async function runTool(cmd: string, args: string[], o: RunOptions): Promise<string> {
  const execa = await loadExeca();
  const r = await execa(cmd, args, {
    cwd: o.cwd,
    reject: false,
    all: true,
    stdin: 'ignore',
    env: { LC_ALL: 'C', TZ: 'UTC', SOURCE_DATE_EPOCH: String(o.epoch), ...o.env },
  });
  if (r.exitCode !== 0) {
    const out = String(r.all ?? '').trim().split('\n').slice(-30);
    throw new KbundleError(`${cmd} failed (exit ${r.exitCode})`, ExitCode.ToolFailed, out);
  }
  return String(r.stdout ?? '');
}

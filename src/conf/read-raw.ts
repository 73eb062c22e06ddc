/**
 * Reads a dkms.conf the way DKMS does: bash sources it (and the /etc/dkms
 * override files), only whitelisted variables come back.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { kernelConfigPath } from './kernel-config.js';
import { checkConfFile, rejectionMessage } from './limits.js';
import { distroName, readOsRelease, type OsRelease } from './os-release.js';
import type { RegexResults } from './records.js';
import { runSafeSource } from './run-bash.js';
import { checkBashSyntax } from './syntax-check.js';
import type { ConfContext, RawConf } from './types.js';
import { DKMS_CONF_VARIABLES } from './whitelist.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

export interface ReadOptions {
  /**
   * Working directory of the sourcing bash. DKMS uses whatever directory it
   * was started from; dpkg and the kernel hooks start it in '/', so that is
   * the default (it also decides what unquoted globs in values expand to).
   */
  cwd?: string;
  /** 'capture' collects the files' stderr instead of passing it through. */
  stderr?: 'inherit' | 'capture';
  /** Per bash run (syntax check, sourcing); default CONF_LIMITS.timeoutMs. */
  timeoutMs?: number;
}

export interface SourcedConf {
  raw: RawConf;
  /** bash's own `=~` verdicts for MAKE_MATCH, PATCH_MATCH, BUILD_EXCLUSIVE_KERNEL/ARCH. */
  regex: RegexResults;
  /** The files actually sourced, in order. */
  files: string[];
  stderr: string;
}

/** DKMS's override files, most general first (3.4.3 order; 3.0.10 reads the first four). */
export function overrideFiles(ctx: ConfContext): string[] {
  const d = ctx.overridesDir;
  const m = ctx.module;
  if (!d || !m) return [];
  const v = ctx.moduleVersion ?? '';
  const k = ctx.kernelver;
  const a = ctx.arch;
  const names = [`${m}.conf`];
  if (v) names.push(`${m}-${v}.conf`, `${m}-${v}-${k}.conf`, `${m}-${v}-${k}-${a}.conf`);
  names.push(`${m}--${k}.conf`, `${m}--${k}-${a}.conf`);
  return names.map((n) => join(d, n));
}

/**
 * The variables DKMS has set when it sources a conf, by their DKMS names.
 * A caller evaluating many confs passes the os-release it read once.
 */
export function visibleVariables(ctx: ConfContext, os: OsRelease | null = readOsRelease()): Record<string, string> {
  return {
    kernelver: ctx.kernelver,
    arch: ctx.arch,
    kernel_source_dir: ctx.kernelSourceDir,
    kernel_config: kernelConfigPath(ctx),
    dkms_tree: ctx.dkmsTree,
    source_tree: ctx.sourceTree,
    install_tree: ctx.installTree,
    tmp_location: process.env.TMPDIR || '/tmp',
    module: ctx.module ?? '',
    module_version: ctx.moduleVersion ?? '',
    parallel_jobs: String(ctx.parallelJobs),
    running_distribution: os ? distroName(os) : 'unknown',
    current_kernel: release(),
    current_os: 'Linux',
  };
}

const DIRECTIVE_RE = /^[A-Za-z_][A-Za-z0-9_]*=/;

export async function sourceConf(ctx: ConfContext, opts: ReadOptions = {}): Promise<SourcedConf> {
  try {
    await access(ctx.confPath, constants.R_OK);
  } catch {
    throw new KbundleError(`Could not locate dkms.conf file: ${ctx.confPath} does not exist.`, ExitCode.BadAction);
  }
  for (const d of ctx.directives ?? []) {
    if (!DIRECTIVE_RE.test(d)) throw new KbundleError(`--directive needs NAME=value, got "${d}".`, ExitCode.Usage);
  }
  const files = [ctx.confPath];
  for (const f of overrideFiles(ctx)) {
    try {
      await access(f, constants.F_OK);
      files.push(f);
    } catch {
      // absent override files are the normal case
    }
  }
  for (const f of files) {
    checkConfFile(f);
    await checkBashSyntax(f, opts.timeoutMs);
  }
  const r = await runSafeSource({
    whitelist: DKMS_CONF_VARIABLES,
    vars: visibleVariables(ctx),
    files,
    regex: ['MAKE_MATCH:kernelver', 'PATCH_MATCH:kernelver', 'BUILD_EXCLUSIVE_KERNEL:kernelver', 'BUILD_EXCLUSIVE_ARCH:arch'],
    directives: ctx.directives,
    cwd: opts.cwd ?? '/',
    stderr: opts.stderr,
    timeoutMs: opts.timeoutMs,
  });
  if (r.rejected.length) throw new KbundleError(rejectionMessage(files, r.rejected), ExitCode.BadConf);
  return { raw: r.raw, regex: r.regex, files, stderr: r.stderr };
}

export async function readRawConf(ctx: ConfContext, opts: ReadOptions = {}): Promise<RawConf> {
  return (await sourceConf(ctx, opts)).raw;
}

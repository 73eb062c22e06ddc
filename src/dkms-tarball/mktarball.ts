/**
 * mktarball: DKMS's tarball layout (dkms_main_tree/<k>/<a>/{module,log},
 * dkms_source_tree/ or dkms_binaries_only/), every requested kernel included
 * (DKMS 3.0.x archives only the first), and reproducible: sorted entries,
 * fixed owner and mtime (SOURCE_DATE_EPOCH, else the newest input file).
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { RunContext } from '../lifecycle/context.js';
import { kernelArchDir, sourceLink, versionDir, type ModuleRef, type Target } from '../tree/paths.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { fsyncPath, renameDurable, tempPathFor } from '../util/atomic.js';
import { isDir } from '../util/fs.js';
import { newestMtime } from '../tar/repro-tar.js';
import { compressionFor, tarballName } from './naming.js';

const run = promisify(execFile);

export interface MktarballOptions {
  targets: Target[];
  sourceOnly: boolean;
  binariesOnly: boolean;
  archive?: string;
}

export async function mktarball(ctx: RunContext, m: ModuleRef, o: MktarballOptions): Promise<string> {
  if (o.sourceOnly && o.binariesOnly) throw new KbundleError('You cannot specify both --source-only and --binaries-only.', ExitCode.BadConf);
  const targets = o.sourceOnly ? [] : o.targets;
  for (const t of targets) {
    if (!(await isDir(join(kernelArchDir(ctx.roots, m, t), 'module')))) {
      throw new KbundleError(`Module ${m.module}/${m.version} is not built for kernel ${t.kernel} (${t.arch}); build it before mktarball.`, ExitCode.InstallFailed);
    }
  }
  const name = tarballName(m.module, m.version, targets, o.sourceOnly);
  const out = o.archive
    ? isAbsolute(o.archive) || o.archive.includes('/')
      ? resolve(o.archive)
      : join(versionDir(ctx.roots, m), 'tarball', o.archive)
    : join(versionDir(ctx.roots, m), 'tarball', name);

  const stage = await mkdtemp(join(tmpdir(), 'kbundle-mktarball-'));
  try {
    await mkdir(join(stage, 'dkms_main_tree'));
    for (const t of targets) {
      const dest = join(stage, 'dkms_main_tree', t.kernel, t.arch);
      await mkdir(dest, { recursive: true });
      const kad = kernelArchDir(ctx.roots, m, t);
      for (const e of await readdir(kad)) await cp(join(kad, e), join(dest, e), { recursive: true, verbatimSymlinks: true });
    }
    const src = await realpath(sourceLink(ctx.roots, m));
    if (o.binariesOnly) {
      const bo = join(stage, 'dkms_binaries_only');
      await mkdir(bo);
      await cp(join(src, 'dkms.conf'), join(bo, 'dkms.conf'));
      await writeFile(join(bo, 'PACKAGE_NAME'), `${m.module}\n`);
      await writeFile(join(bo, 'PACKAGE_VERSION'), `${m.version}\n`);
    } else {
      await cp(src, join(stage, 'dkms_source_tree'), { recursive: true, verbatimSymlinks: true });
    }
    const epoch = process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : await newestMtime(stage);
    await mkdir(dirname(out), { recursive: true });
    const tmp = tempPathFor(out);
    try {
      await run('tar', [
        '-C', stage, '--sort=name', `--mtime=@${epoch}`, '--owner=0', '--group=0', '--numeric-owner',
        '--mode=go-w,u+rw,a+rX', '--format=gnu', ...compressionFor(out), '-cf', tmp, '.',
      ], { env: { ...process.env, LC_ALL: 'C', GZIP: '-n' } });
      await fsyncPath(tmp);
      await renameDurable(tmp, out);
    } catch (e) {
      await rm(tmp, { force: true });
      throw new KbundleError(`Failed to make tarball ${out}: ${(e as Error).message}`, ExitCode.InstallFailed);
    }
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  return out;
}

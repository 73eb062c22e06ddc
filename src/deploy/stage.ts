/**
 * Everything an install writes, prepared in a private directory inside the
 * DKMS tree (same file system, so commit is renames): each package's source
 * (unpacked through the zstd bomb guard and safeExtract) and, for prebuilt
 * picks, the <k>/<a> directory DKMS would have after a build — modules
 * compressed the way the target kernel's are, plus kbundle's build record.
 * A failure here leaves nothing behind but this directory, which is removed.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { OpenBundle } from '../bundle/read/open.js';
import { compressModule } from '../kmod/compression.js';
import { isElf } from '../elf/elf-file.js';
import { sourceDir, type Roots } from '../tree/paths.js';
import { BUILD_RECORD, writeJsonRecord, type BuildRecord } from '../tree/records.js';
import ssri from 'ssri';
import { KbundleError } from '../util/errors.js';
import { pathExists, sha256File } from '../util/fs.js';
import type { InstallPlan, PackagePlan } from './plan.js';
import { stagingRoot } from './state.js';
import { ExitCode } from '../util/exit-codes.js';

export interface StagedPackage {
  plan: PackagePlan;
  /** Unpacked source to move to <sourcetree>/<m>-<v>, or null when it is already there. */
  source: string | null;
  /** Staged <k>/<a> dir for exact/compatible; null for source builds. */
  kernelArchDir: string | null;
}

export interface Staged {
  dir: string;
  packages: StagedPackage[];
}

export async function stageInstall(roots: Roots, bundle: OpenBundle, plan: InstallPlan, packages: PackagePlan[]): Promise<Staged> {
  const dir = join(stagingRoot(roots), `${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  const out: Staged = { dir, packages: [] };
  try {
    for (const [i, p] of packages.entries()) {
      const m = { module: p.package, version: p.version };
      let source: string | null = null;
      if (!(await pathExists(sourceDir(roots, m)))) {
        const dest = join(dir, `src-${i}`);
        await bundle.extractSource(p.package, dest);
        source = join(dest, `${p.package}-${p.version}`);
        if (!(await pathExists(join(source, 'dkms.conf')))) {
          throw new KbundleError(`${bundle.index.file}: the source of ${p.package}/${p.version} has no ${p.package}-${p.version}/dkms.conf`, ExitCode.BadLayout);
        }
      }
      let kad: string | null = null;
      if (p.level === 'exact' || p.level === 'compatible') {
        kad = join(dir, `kad-${i}`);
        await mkdir(join(kad, 'module'), { recursive: true });
        await bundle.copyBlobsTo(join(dir, 'blobs'), p.modules.map((x) => x.digest!));
        const target = bundle.index.packages.find((x) => x.name === p.package)!.targets.find((t) => t.kernelRelease === p.fromKernel && t.arch === plan.target.arch)!;
        const record: BuildRecord = {
          format: 'kbundle-build-v1',
          module: p.package,
          version: p.version,
          kernel: plan.target.kernel,
          arch: plan.target.arch,
          modules: [],
          cacheKey: null,
          fromCache: false,
          signed: null,
          compression: plan.target.compression,
        };
        for (const pm of p.modules) {
          const blob = join(dir, 'blobs', pm.digest!.replace(/^sha256:/, ''));
          // The signed config says this layer is a module; refuse anything that is not an ELF before it reaches /lib/modules.
          const bytes = await readFile(blob);
          if (!isElf(bytes)) throw new KbundleError(`${bundle.index.file}: module ${pm.name} (${pm.digest}) is not an ELF file`, ExitCode.BadLayout);
          const integrity = target.modules.find((x) => x.name === pm.name)?.integrity;
          if (!integrity || !ssri.checkData(bytes, integrity)) {
            throw new KbundleError(`${bundle.index.file}: module ${pm.name} does not match its integrity ${integrity ?? '(none)'}`, ExitCode.DigestMismatch);
          }
          const plain = join(kad, 'module', `${pm.name}.ko`);
          await copyFile(blob, plain);
          const final = plan.target.compression ? await compressModule(plain, plan.target.compression) : plain;
          if (!final.endsWith(pm.installedFile)) throw new Error(`internal: staged ${final}, planned ${pm.installedFile}`);
          record.modules.push({ destName: pm.name, destLocation: pm.destLocation, file: pm.installedFile, sha256: await sha256File(final) });
          const sig = target.modules.find((x) => x.name === pm.name)?.sig;
          if (sig?.signer && !record.signed) record.signed = { signer: sig.signer, keyId: sig.keyId ?? '', hash: sig.hash ?? '' };
        }
        await writeJsonRecord(join(kad, BUILD_RECORD), record);
      }
      out.packages.push({ plan: p, source, kernelArchDir: kad });
    }
    await rm(join(dir, 'blobs'), { recursive: true, force: true });
    return out;
  } catch (e) {
    await discardStaging(roots, dir);
    throw e;
  }
}

/** Removes a staging dir and the staging root when it is empty (leaves the tree as found). */
export async function discardStaging(roots: Roots, dir: string | null): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
  await rmdir(stagingRoot(roots)).catch(() => undefined);
}

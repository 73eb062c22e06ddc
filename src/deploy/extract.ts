/**
 * `kbundle bundle extract`: just the module files one kernel needs, laid out
 * as `<out>/lib/modules/<k>/<location>/<name>.ko[.ext]` (what a driver update
 * disk or an installer image overlays), plus `kbundle-extract.json` saying
 * which build was chosen and why. Written to a sibling temp dir and renamed,
 * so `<out>` is complete or absent.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { commitStagedDir, tempPathFor } from '../util/atomic.js';
import type { OpenBundle } from '../bundle/read/open.js';
import { isElf } from '../elf/elf-file.js';
import { compressModule, type ModuleSuffix } from '../kmod/compression.js';
import { readTargetFacts } from '../target/facts.js';
import { KbundleError } from '../util/errors.js';
import { pathExists } from '../util/fs.js';
import { planInstall, type PackagePlan } from './plan.js';
import { ExitCode } from '../util/exit-codes.js';

export interface ExtractRequest {
  root: string;
  installTree: string;
  kernel: string;
  arch: string;
  outDir: string;
  compression: ModuleSuffix;
  location: (destLocation: string) => string;
}

export interface ExtractResult {
  files: string[];
  packages: Array<{ package: string; version: string; level: string; fromKernel: string | null }>;
}

export async function extractForKernel(bundle: OpenBundle, req: ExtractRequest): Promise<ExtractResult> {
  const out = resolve(req.outDir);
  if (await pathExists(out)) throw new KbundleError(`${out} exists; bundle extract writes a new directory.`, 1);
  const facts = await readTargetFacts({ kernel: req.kernel, arch: req.arch, root: req.root, installTree: req.installTree });
  const modulesRoot = join(out, 'lib/modules');
  const plan = planInstall({
    index: bundle.index,
    signatureChecked: true,
    target: facts,
    compression: req.compression,
    installTree: modulesRoot,
    location: req.location,
    state: { receipts: new Map(), owners: new Map(), installedDigest: new Map(), kernelKeys: null },
    allowDowngrade: true,
    requireTrustedSigner: false,
    force: true,
  });
  const picks: PackagePlan[] = plan.packages.map((p) => {
    if (p.level === 'exact' || p.level === 'compatible') return p;
    // Preparing media for a kernel this machine does not have: nothing to compare with, so only a build for that very release qualifies.
    const own = facts.vermagic === null ? bundle.index.packages.find((x) => x.name === p.package)?.targets.find((t) => t.kernelRelease === req.kernel && t.arch === req.arch) : undefined;
    if (!own) {
      throw new KbundleError(`${p.package}/${p.version}: the bundle has no binary for kernel ${req.kernel} (${req.arch}).`, ExitCode.NoMatch, p.explanation);
    }
    return {
      ...p,
      level: 'exact' as const,
      fromKernel: own.kernelRelease,
      modules: own.modules.map((m) => ({
        name: m.name,
        digest: m.digest,
        destLocation: m.destLocation,
        installedFile: `${m.name}.ko${req.compression}`,
        installPath: `${modulesRoot}/${req.kernel}${req.location(m.destLocation)}/${m.name}.ko${req.compression}`.replace(/\/+/g, '/'),
      })),
    };
  });

  const tmp = tempPathFor(out);
  const res: ExtractResult = { files: [], packages: [] };
  try {
    await bundle.copyBlobsTo(join(tmp, '.blobs'), picks.flatMap((p) => p.modules.map((m) => m.digest!)));
    for (const p of picks) {
      for (const m of p.modules) {
        const blob = join(tmp, '.blobs', m.digest!.replace(/^sha256:/, ''));
        if (!isElf(await readFile(blob))) throw new KbundleError(`module ${m.name} (${m.digest}) is not an ELF file`, ExitCode.BadLayout);
        const finalPath = join(tmp, m.installPath.slice(out.length));
        const plain = finalPath.replace(/\.ko(\.gz|\.xz|\.zst)$/, '.ko');
        await mkdir(dirname(plain), { recursive: true });
        await copyFile(blob, plain);
        if (req.compression) await compressModule(plain, req.compression);
        res.files.push(m.installPath);
      }
      res.packages.push({ package: p.package, version: p.version, level: p.level, fromKernel: p.fromKernel });
    }
    await rm(join(tmp, '.blobs'), { recursive: true, force: true });
    await writeFile(join(tmp, 'kbundle-extract.json'), `${JSON.stringify({ bundle: plan.bundle, kernel: req.kernel, arch: req.arch, ...res }, null, 2)}\n`);
    await commitStagedDir(tmp, out);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return res;
}

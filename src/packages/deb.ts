/**
 * mkdeb, mkdsc, mkbmdeb. Each stages in a private temp dir, runs the real
 * dpkg tools there, and copies only the finished files to the output dir.
 */
import { cp, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ModuleSuffix } from '../kmod/compression.js';
import { withStage, checkOutputs, debArch, debianUpstreamVersion, normalizeTree, packageName, placeModule, publish, rfc2822, writeText } from './common.js';
import { debianSource, type DebianMeta } from './debian-source.js';
import type { KernelBinaries, PackageInput } from './input.js';
import { requireTools, runTool } from './tools.js';

export interface Output {
  outDir: string;
  force: boolean;
}

/** `<stage>/<source>-<upstream>/`: the module source plus (optionally) debian/. */
async function stageSourceTree(stage: string, input: PackageInput, src: { source: string; upstreamVersion: string }): Promise<string> {
  const tree = join(stage, `${src.source}-${src.upstreamVersion}`);
  await cp(input.sourceDir, tree, { recursive: true, verbatimSymlinks: true });
  // A module source's own debian/ would be mixed with ours; the package's is the one we write.
  await rm(join(tree, 'debian'), { recursive: true, force: true });
  return tree;
}

async function writeDebianDir(tree: string, files: Map<string, { text: string; mode: number }>): Promise<void> {
  for (const [p, f] of files) {
    await mkdir(dirname(join(tree, 'debian', p)), { recursive: true });
    await writeText(join(tree, 'debian', p), f.text, f.mode);
  }
}

/** `<m>-dkms_<v>-<rev>_all.deb`, built by running the generated debian/rules through dpkg-buildpackage. */
export async function mkdeb(input: PackageInput, meta: DebianMeta, out: Output): Promise<string[]> {
  requireTools('dpkg-buildpackage', 'dpkg-deb', 'dpkg-gencontrol', 'make');
  debianUpstreamVersion(input.version);
  const src = debianSource(input, meta);
  const name = `${src.binary}_${src.version}_all.deb`;
  const dest = join(out.outDir, name);
  await checkOutputs([dest], out.force);
  return withStage('kbundle-pkg-', async (stage) => {
    const tree = await stageSourceTree(stage, input, src);
    await writeDebianDir(tree, src.files);
    await normalizeTree(stage, input.epoch);
    await runTool('dpkg-buildpackage', ['-b', '-us', '-uc', '--no-check-builddeps'], { cwd: tree, epoch: input.epoch });
    return publish([{ from: join(stage, name), to: dest }]);
  });
}

/** `.dsc`, `.orig.tar.gz` and `.debian.tar.xz` that dpkg-source -x unpacks and dpkg-buildpackage turns into mkdeb's .deb. */
export async function mkdsc(input: PackageInput, meta: DebianMeta, out: Output): Promise<string[]> {
  requireTools('dpkg-source', 'tar', 'gzip');
  debianUpstreamVersion(input.version);
  const src = debianSource(input, meta);
  const orig = `${src.source}_${src.upstreamVersion}.orig.tar.gz`;
  const names = [`${src.source}_${src.version}.dsc`, orig, `${src.source}_${src.version}.debian.tar.xz`];
  await checkOutputs(names.map((n) => join(out.outDir, n)), out.force);
  return withStage('kbundle-pkg-', async (stage) => {
    const tree = await stageSourceTree(stage, input, src);
    await normalizeTree(stage, input.epoch);
    const dir = `${src.source}-${src.upstreamVersion}`;
    // The upstream tarball, reproducible: sorted, numeric root owner, one mtime, gzip without name/time.
    await runTool(
      'sh',
      ['-c', `tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner --mtime=@${input.epoch} -cf - "$1" | gzip -9n > "$2"`, 'sh', dir, orig],
      { cwd: stage, epoch: input.epoch },
    );
    await writeDebianDir(tree, src.files);
    await normalizeTree(tree, input.epoch);
    await runTool('dpkg-source', ['-b', dir], { cwd: stage, epoch: input.epoch });
    return publish(names.map((n) => ({ from: join(stage, n), to: join(out.outDir, n) })));
  });
}

export interface BmdebOptions extends DebianMeta {
  /** Compression of the kernel's modules (detected from its module tree, or --compress). */
  compression: (kernel: string) => Promise<ModuleSuffix>;
}

/** dpkg-gencontrol's Installed-Size: KiB, each file rounded up, plus one per directory. */
async function installedSize(root: string): Promise<number> {
  let kib = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name === 'DEBIAN' && d === root) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) {
        kib += 1;
        await walk(p);
      } else kib += Math.ceil((await stat(p)).size / 1024);
    }
  };
  await walk(root);
  return kib;
}

export function bmdebName(input: PackageInput, k: KernelBinaries): { pkg: string; file: string } {
  const pkg = `${packageName(input.module)}-modules-${k.kernel.toLowerCase()}`;
  return { pkg, file: `${pkg}_${input.version}_${debArch(k.arch)}.deb` };
}

/** One `<m>-modules-<kver>_<v>_<arch>.deb` per kernel: the signed modules only, depmod in postinst/postrm. */
export async function mkbmdeb(input: PackageInput, o: BmdebOptions, out: Output): Promise<string[]> {
  requireTools('dpkg-deb', 'gzip');
  debianUpstreamVersion(input.version);
  const dests = input.kernels.map((k) => join(out.outDir, bmdebName(input, k).file));
  await checkOutputs(dests, out.force);
  const src = packageName(input.module);
  return withStage('kbundle-pkg-', async (stage) => {
    const done: Array<{ from: string; to: string }> = [];
    for (const k of input.kernels) {
      const { pkg, file } = bmdebName(input, k);
      const root = join(stage, pkg);
      const moddir = join(root, 'lib/modules', k.kernel, 'updates/dkms');
      const ext = await o.compression(k.kernel);
      for (const m of k.modules) await placeModule(m, moddir, ext);
      const doc = join(root, 'usr/share/doc', pkg);
      await mkdir(doc, { recursive: true });
      await writeText(
        join(doc, 'copyright'),
        `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: ${input.module}\n\nFiles: *\nCopyright: ${o.maintainer.replace(/\s*<.*$/, '')}\nLicense: GPL-2\n\nLicense: GPL-2\n On Debian systems the full text of the GNU General Public License version 2\n is in /usr/share/common-licenses/GPL-2.\n`,
      );
      await writeText(join(doc, 'changelog'), `${src} (${input.version}) unstable; urgency=medium\n\n  * Binary modules for Linux ${k.kernel}, packaged by kbundle mkbmdeb.\n\n -- ${o.maintainer}  ${rfc2822(input.epoch)}\n`);
      await runTool('gzip', ['-9n', join(doc, 'changelog')], { epoch: input.epoch });
      const deb = join(root, 'DEBIAN');
      await mkdir(deb);
      // DPKG_ROOT is set by dpkg for --root installs with chroot-less scripts; empty otherwise.
      const depmod = `depmod -a \${DPKG_ROOT:+-b "$DPKG_ROOT"} ${k.kernel}`;
      await writeText(
        join(deb, 'postinst'),
        `#!/bin/sh\nset -e\n\ncase "$1" in\n    configure)\n        ${depmod}\n        ;;\nesac\n\nexit 0\n`,
        0o755,
      );
      await writeText(
        join(deb, 'postrm'),
        `#!/bin/sh\nset -e\n\ncase "$1" in\n    remove|purge)\n        if [ -d "$DPKG_ROOT/lib/modules/${k.kernel}" ]; then\n            ${depmod}\n        fi\n        ;;\nesac\n\nexit 0\n`,
        0o755,
      );
      await normalizeTree(root, input.epoch);
      const size = await installedSize(root);
      await runTool('sh', ['-c', 'cd "$1" && find lib usr -type f -print0 | sort -z | xargs -0r md5sum > DEBIAN/md5sums', 'sh', root], { epoch: input.epoch });
      await writeText(
        join(deb, 'control'),
        [
          `Package: ${pkg}`,
          `Source: ${src}`,
          `Version: ${input.version}`,
          `Architecture: ${debArch(k.arch)}`,
          `Maintainer: ${o.maintainer}`,
          `Installed-Size: ${size}`,
          `Depends: linux-image-${k.kernel}`,
          // The -dkms package would build the same files into the same place (updates/dkms) for this kernel.
          `Conflicts: ${src}-dkms`,
          `Replaces: ${src}-dkms`,
          `Provides: ${src}-modules`,
          'Section: kernel',
          'Priority: optional',
          `Description: ${input.module} kernel modules for Linux ${k.kernel}`,
          ` Prebuilt, signed ${input.module} ${input.version} kernel modules for Linux ${k.kernel}`,
          ` (${k.arch}), for machines without a compiler or kernel headers. Built by`,
          ' kbundle mkbmdeb.',
          '',
        ].join('\n'),
      );
      await normalizeTree(root, input.epoch);
      const file_ = join(stage, file);
      await runTool('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, file_], { epoch: input.epoch });
      done.push({ from: file_, to: join(out.outDir, file) });
    }
    return publish(done);
  });
}

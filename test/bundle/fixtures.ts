// Real inputs for bundle tests: a small module source tree on disk and real
// compressed kernel modules shipped by the installed Debian kernel.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeys, parsePublicKey, parseSecretKey, type PublicKey, type SecretKey } from '../../src/sign/minisign.js';
import type { BundleSpec, TargetSpec } from '../../src/bundle/write/writer.js';

export function tmp(prefix = 'kbundle-bt-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A hello-like source tree; `mtime` and `umask`-style modes vary so tests can show they do not leak into bytes. */
export function makeSourceTree(root: string, opts: { mtime?: number; fileMode?: number } = {}): string {
  const dir = join(root, 'hello-1.0');
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(join(dir, 'dkms.conf'), 'PACKAGE_NAME="hello"\nPACKAGE_VERSION="1.0"\nBUILT_MODULE_NAME[0]="hello"\nDEST_MODULE_LOCATION[0]="/updates/dkms"\nAUTOINSTALL="yes"\n');
  writeFileSync(join(dir, 'Makefile'), 'obj-m += hello.o\n');
  writeFileSync(join(dir, 'src', 'hello.c'), '#include <linux/module.h>\nMODULE_LICENSE("GPL");\n');
  writeFileSync(join(dir, '.gitignore'), '*.o\n*.ko\n');
  writeFileSync(join(dir, 'configure.sh'), '#!/bin/sh\necho ok\n');
  chmodSync(join(dir, 'configure.sh'), 0o755);
  symlinkSync('src/hello.c', join(dir, 'hello.c'));
  if (opts.fileMode !== undefined) for (const f of ['dkms.conf', 'Makefile', '.gitignore']) chmodSync(join(dir, f), opts.fileMode);
  if (opts.mtime !== undefined) {
    for (const f of ['dkms.conf', 'Makefile', 'src/hello.c', '.gitignore', 'configure.sh', 'src', '.']) utimesSync(join(dir, f), opts.mtime, opts.mtime);
  }
  return dir;
}

/** A directory of real in-tree modules of an installed 6.12 kernel (any version). */
const KMOD_DIR = (() => {
  const k = readdirSync('/lib/modules').find((n) => n.startsWith('6.12.') && existsSync(`/lib/modules/${n}/kernel/net/vmw_vsock`));
  if (!k) throw new Error('tests need a Debian 6.12 kernel with its modules under /lib/modules (.ci/setup installs one)');
  return `/lib/modules/${k}/kernel/net/vmw_vsock`;
})();

/** Real signed, xz-compressed modules from the installed Debian kernel. */
export function realModules(): string[] {
  return readdirSync(KMOD_DIR)
    .filter((n) => n.endsWith('.ko.xz'))
    .sort()
    .map((n) => join(KMOD_DIR, n));
}

let keys: { sk: SecretKey; pk: PublicKey; skPem: string; pkText: string } | null = null;
export function testKeys() {
  if (!keys) {
    const g = generateKeys();
    keys = { sk: parseSecretKey(g.secretKeyPem), pk: parsePublicKey(g.publicKeyText), skPem: g.secretKeyPem, pkText: g.publicKeyText };
  }
  return keys;
}

export function target(kernelRelease: string, arch: string, modFiles: string[]): TargetSpec {
  return {
    kernelRelease,
    arch,
    vermagic: `${kernelRelease} SMP preempt mod_unload modversions `,
    symversDigest: 'sha256:' + '0'.repeat(64),
    modules: modFiles.map((f) => ({
      name: f.split('/').pop()!.replace(/\.ko.*$/, ''),
      file: f,
      destLocation: '/updates/dkms',
      versions: [['module_layout', '0x12345678']],
    })),
  };
}

export function spec(sourceDir: string, targets: TargetSpec[], over: Partial<BundleSpec> = {}): BundleSpec {
  return {
    name: 'hello',
    version: '1.0',
    sourceDateEpoch: 1700000000,
    metadata: { vendor: 'Example Corp', description: 'hello world module', license: 'GPL-2.0' },
    compressionLevel: 3,
    signingKey: testKeys().sk,
    packages: [{ name: 'hello', version: '1.0', modules: [{ name: 'hello', destLocation: '/updates/dkms' }], source: { dir: sourceDir }, targets }],
    ...over,
  };
}

/**
 * Rewrites the tar `src` as `dst` with python's tarfile in `format`, the
 * same members in the same order: another writer's bytes for the same
 * archive. `first` runs before the members are copied (with `dst` open,
 * `io` imported); `each` runs per member `m` before it is added.
 */
export function rewriteWithPython(src: string, dst: string, format: 'GNU_FORMAT' | 'PAX_FORMAT', opts: { first?: string; each?: string } = {}): void {
  const script = [
    'import tarfile,sys,io',
    `src=tarfile.open(sys.argv[1]); dst=tarfile.open(sys.argv[2],"w",format=tarfile.${format})`,
    opts.first ?? '',
    'for m in src:',
    `  ${opts.each ?? 'pass'}`,
    '  dst.addfile(m, src.extractfile(m) if m.isfile() else None)',
    'dst.close()',
  ].join('\n');
  const r = spawnSync('python3', ['-c', script, src, dst], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

// Shared set-up of the package tests: the example module built for two kernels
// in a scratch DKMS tree (signed with the example key) and as a signed bundle,
// and the lint checks with the warnings docs/packages.md accepts.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLE_PUB, EXAMPLE_KEYS, makeProject } from '../helpers/bundles.js';
import { twoKernels } from '../helpers/kernels.js';
import { addSource, kbundle, makeScratch, sh, type RunResult, type Scratch } from '../helpers/scratch.js';

export const EPOCH = '1700000000';
export const KERNELS = twoKernels();
export const TRUST = ['--trust', BUNDLE_PUB];
export const SIGNER = 'kbundle example module signing key (DO NOT TRUST)';

/** lintian tags docs/packages.md accepts, each with its reason there. */
export const LINTIAN_ACCEPTED = ['copyright-without-copyright-notice', 'initial-upload-closes-no-bugs', 'no-dh-sequencer', 'debian-watch-file-is-missing'];
/** rpmlint findings docs/packages.md accepts. */
export const RPMLINT_ACCEPTED = ['no-signature', 'no-binary', 'no-url-tag', 'no-documentation', 'unstripped-binary-or-object', 'invalid-license', 'devel-file-in-non-devel-package'];

export interface Fixture {
  scratch: Scratch;
  tree: string[];
  bundle: string;
}

/** The scratch tree with hello/1.0 built (signed) for both kernels, and a bundle of the same source. */
export function setUp(): Fixture {
  const scratch = makeScratch(KERNELS);
  addSource(scratch, 'bundles/hello-1.0');
  writeFileSync(join(scratch.etcDir, 'framework.conf'), `mok_signing_key=${EXAMPLE_KEYS}/example-module.key\nmok_certificate=${EXAMPLE_KEYS}/example-module.der\n`);
  const tree = [...scratch.treeArgs, '--etcdir', scratch.etcDir];
  // The second kernel's own modules are xz-compressed (Debian's 6.12 are; on a machine with
  // headers only, an xz-compressed stand-in gives its module tree that convention), so the
  // "compressed as that kernel does" checks see a compressed kernel and an uncompressed one.
  const k2 = join(scratch.installTree, KERNELS[1]);
  if (sh('sh', ['-c', 'find "$1" -name "*.ko.xz" | grep -q .', 'sh', k2]).code !== 0) {
    mkdirSync(join(k2, 'kernel/drivers/misc'), { recursive: true });
    const stand = sh('sh', ['-c', 'printf standin | xz -T1 --check=crc32 > "$1"', 'sh', join(k2, 'kernel/drivers/misc/kbt_standin.ko.xz')]);
    if (stand.code !== 0) throw new Error(stand.stderr);
  }
  const b = kbundle(['build', 'hello/1.0', ...KERNELS.flatMap((k) => ['-k', k]), ...tree, '-q']);
  if (b.code !== 0) throw new Error(`build failed: ${b.stderr}`);
  const { dir, manifest } = makeProject(['bundles/hello-1.0'], KERNELS);
  const bundle = join(dir, 'hello.kbundle');
  const r = kbundle(['bundle', 'build', manifest, '-o', bundle, '-q'], { SOURCE_DATE_EPOCH: EPOCH });
  if (r.code !== 0) throw new Error(`bundle build failed: ${r.stderr}`);
  return { scratch, tree, bundle };
}

export function outDir(): string {
  return mkdtempSync(join(tmpdir(), 'kbundle-pkgout-'));
}

/** kbundle in `cwd` with a umask, SOURCE_DATE_EPOCH fixed. */
export function kb(args: string[], o: { cwd?: string; umask?: string; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const script = `umask ${o.umask ?? '022'}; cd "$1" && shift && exec "$@"`;
  return sh('/bin/sh', ['-c', script, 'sh', o.cwd ?? process.cwd(), process.execPath, join(import.meta.dirname, '../../bin/kbundle'), ...args], {
    SOURCE_DATE_EPOCH: EPOCH,
    ...o.env,
  });
}

export function ok(r: RunResult): string[] {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

export const sha256 = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

export function filesIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** lintian's E:/W: lines other than the accepted tags. */
export function lintianProblems(files: string[]): string[] {
  const r = sh('lintian', ['--pedantic', '-I', '--tag-display-limit', '0', ...files]);
  if (r.code !== 0 && r.code !== 1 && r.code !== 2) throw new Error(`lintian failed to run (${r.code}): ${r.stderr}`);
  return `${r.stdout}\n${r.stderr}`
    .split('\n')
    .filter((l) => /^[EW]: /.test(l))
    .filter((l) => !LINTIAN_ACCEPTED.some((t) => l.includes(` ${t}`)));
}

/** rpmlint's E:/W: findings other than the accepted ones. */
export function rpmlintProblems(files: string[]): string[] {
  const r = sh('rpmlint', files);
  return r.stdout
    .split('\n')
    .filter((l) => / [EW]: /.test(l))
    .filter((l) => !RPMLINT_ACCEPTED.some((t) => l.includes(`: ${t}`)));
}

/** The module ELF image inside a .ko[.gz|.xz|.zst]. */
export function moduleImage(path: string): Buffer {
  const tool = path.endsWith('.xz') ? 'xz' : path.endsWith('.zst') ? 'zstd' : path.endsWith('.gz') ? 'gzip' : null;
  if (!tool) return readFileSync(path);
  const r = spawnSync(tool, ['-dc', path], { maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${tool} -dc ${path} failed`);
  return r.stdout;
}

/** Unpacks a .deb's data into a new dir. */
export function unpackDeb(deb: string): string {
  const d = mkdtempSync(join(tmpdir(), 'kbundle-deb-'));
  ok(sh('dpkg-deb', ['-x', deb, d]));
  return d;
}

/** Unpacks an RPM's payload into a new dir. */
export function unpackRpm(rpm: string): string {
  const d = mkdtempSync(join(tmpdir(), 'kbundle-rpm-'));
  ok(sh('sh', ['-c', 'cd "$1" && rpm2cpio "$2" | cpio -idm --quiet', 'sh', d, rpm]));
  return d;
}

/** Every file under dir (relative), sorted. */
export function walk(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { resolveKernels, resolveKernelTargets } from '../../src/manifest/kernels.js';
import { loadManifest } from '../../src/manifest/load.js';
import { KbundleError } from '../../src/util/errors.js';
import { REPO } from '../helpers/scratch.js';
import { tmp } from '../bundle/fixtures.js';

function write(text: string): string {
  const d = tmp('kbundle-mf-');
  const f = join(d, 'kbundle.yaml');
  writeFileSync(f, text);
  return f;
}

async function errorOf(text: string): Promise<{ file: string; lines: string[]; code: number }> {
  const file = write(text);
  const e = await loadManifest(file).then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof KbundleError)) throw new Error('expected a KbundleError');
  return { file, lines: e.message.split('\n'), code: e.exitCode };
}

const GOOD = `apiVersion: kbundle/v1
source: ../hello-1.0
kernels:
  - 6.1.0-*-amd64
  - release: 6.12.117+deb12-amd64
    headers: /lib/modules/6.12.117+deb12-amd64/build
arches: [x86_64]
signing:
  moduleKey: keys/mok.key
  moduleCert: keys/mok.crt
bundleKey: keys/bundle.key
compression:
  level: 12
metadata:
  vendor: Example
  revision: 3
output: out/hello.kbundle
`;

describe('loadManifest', () => {
  test('valid manifest: defaults applied, paths resolved against the manifest dir', async () => {
    const f = write(GOOD);
    const d = join(f, '..');
    const m = await loadManifest(f);
    expect(m).toEqual({
      file: f,
      apiVersion: 'kbundle/v1',
      sources: [join(d, '../hello-1.0')],
      kernels: [{ pattern: '6.1.0-*-amd64' }, { pattern: '6.12.117+deb12-amd64', headers: '/lib/modules/6.12.117+deb12-amd64/build' }],
      arches: ['x86_64'],
      signing: { moduleKey: join(d, 'keys/mok.key'), moduleCert: join(d, 'keys/mok.crt'), hash: 'sha256' },
      bundleKey: join(d, 'keys/bundle.key'),
      compression: { level: 12 },
      metadata: { vendor: 'Example', revision: '3' },
      output: join(d, 'out/hello.kbundle'),
    });
  });

  test('the shipped example manifest is valid', async () => {
    const m = await loadManifest(join(REPO, 'bundles/example.kbundle.yaml'));
    expect(m.sources).toEqual([join(REPO, 'bundles/hello-1.0')]);
  });

  test('bad indentation → file:line:col of the YAML error', async () => {
    const { file, lines, code } = await errorOf('apiVersion: kbundle/v1\nsource: x\nkernels:\n  - a\n   bad: 1\n');
    expect(code).toBe(34);
    // `a` and the over-indented line fuse into one multi-line implicit key starting at 4:5.
    expect(lines[0]).toBe(`${file}:4:5: Implicit keys need to be on a single line`);
  });

  test('wrong type → position of the value and what was expected', async () => {
    const { file, lines } = await errorOf('apiVersion: kbundle/v1\nsource: x\nkernels: [a]\ncompression:\n  level: high\n');
    expect(lines).toEqual([`${file}:5:10: compression.level must be integer, got string "high"`]);
  });

  test('unknown key → position of the key, allowed keys listed', async () => {
    const { file, lines } = await errorOf('apiVersion: kbundle/v1\nsource: x\nkernels: [a]\nkernel: [b]\n');
    expect(lines).toEqual([
      `${file}:4:1: unknown key "kernel" in top level; expected one of: apiVersion, name, version, source, sources, kernels, arches, signing, bundleKey, compression, sourceDateEpoch, metadata, output`,
    ]);
  });

  test('missing required field → reported at the enclosing mapping', async () => {
    const { file, lines } = await errorOf('apiVersion: kbundle/v1\nsource: x\nsigning:\n  moduleKey: k\nkernels: [a]\n');
    expect(lines).toEqual([`${file}:4:3: signing is missing required key "moduleCert"`]);
    const top = await errorOf('apiVersion: kbundle/v1\nsource: x\n');
    expect(top.lines).toEqual([`${top.file}:1:1: top level is missing required key "kernels"`]);
  });

  test('several problems are all reported, in file order', async () => {
    const { file, lines } = await errorOf('apiVersion: kbundle/v2\nsource: x\nkernels: []\narches: [sparc]\n');
    expect(lines).toEqual([
      `${file}:1:13: apiVersion must be "kbundle/v1"`,
      `${file}:3:10: kernels must NOT have fewer than 1 items`,
      `${file}:4:10: arches.0 must be one of: "x86_64", "i386", "i686", "aarch64", "arm64", "armv7l", "ppc64le", "s390x", "riscv64", "loongarch64"`,
    ]);
  });

  test('source and sources together, or neither', async () => {
    const both = await errorOf('apiVersion: kbundle/v1\nsource: x\nsources: [y]\nkernels: [a]\n');
    expect(both.lines).toEqual([`${both.file}:1:1: exactly one of "source" or "sources" is required`]);
  });

  test('kernel entry of the wrong shape names both allowed forms', async () => {
    const { file, lines } = await errorOf('apiVersion: kbundle/v1\nsource: x\nkernels:\n  - 42\n');
    expect(lines).toEqual([`${file}:4:5: kernels.0 must be a kernel release or glob (string), or an object {release, headers}`]);
  });

  test('duplicate keys and unknown tags are errors, not warnings', async () => {
    const dup = await errorOf('apiVersion: kbundle/v1\nsource: x\nsource: y\nkernels: [a]\n');
    expect(dup.lines[0]).toMatch(new RegExp(`^${dup.file}:3:1: Map keys must be unique`));
    const tag = await errorOf('apiVersion: kbundle/v1\nsource: !!python/object:os.system x\nkernels: [a]\n');
    expect(tag.lines[0]).toMatch(new RegExp(`^${tag.file}:2:9: Unresolved tag: tag:yaml.org,2002:python/object:os.system`));
  });

  test('unreadable file → exit 34', async () => {
    const e = await loadManifest('/nonexistent/kbundle.yaml').catch((x: KbundleError) => x);
    expect([(e as KbundleError).exitCode, (e as Error).message]).toEqual([34, 'cannot read manifest /nonexistent/kbundle.yaml: ENOENT']);
  });
});

describe('resolveKernels', () => {
  // A header root laid out like /lib/modules on a Debian 12 host with three
  // header sets, so the expectations do not depend on what apt served today.
  const fakeRoot = () => {
    const root = tmp('kbundle-kr-');
    for (const k of ['6.1.0-55-amd64', '6.1.0-56-amd64', '6.12.117+deb12-amd64']) mkdirSync(join(root, k, 'build'), { recursive: true });
    return root;
  };

  test('globs and explicit releases, in kernel version order', () => {
    const root = fakeRoot();
    expect(resolveKernels(['6.1.0-*-amd64'], [root])).toEqual(['6.1.0-55-amd64', '6.1.0-56-amd64']);
    expect(resolveKernels(['6.12.117+deb12-amd64', '6.1.0-5?-amd64'], [root])).toEqual(['6.1.0-55-amd64', '6.1.0-56-amd64', '6.12.117+deb12-amd64']);
    expect(resolveKernels(['*'], [root])).toEqual(['6.1.0-55-amd64', '6.1.0-56-amd64', '6.12.117+deb12-amd64']);
  });

  test('the default root is the real /lib/modules', () => {
    const real = readdirSync('/lib/modules').filter((k) => existsSync(join('/lib/modules', k, 'build'))).sort();
    expect(real.length).toBeGreaterThanOrEqual(2);
    expect([...resolveKernels(['*'])].sort()).toEqual(real);
  });

  test('a pattern matching nothing names the pattern and what is installed (exit 36)', () => {
    const root = fakeRoot();
    let err: KbundleError | null = null;
    try {
      resolveKernels(['6.1.0-*-amd64', '5.10.*'], [root]);
    } catch (e) {
      err = e as KbundleError;
    }
    expect(err?.exitCode).toBe(36);
    expect(err?.message).toBe(`kernel pattern "5.10.*" matches no kernel with headers under ${root} (installed: 6.1.0-55-amd64, 6.1.0-56-amd64, 6.12.117+deb12-amd64)`);
  });

  test('a kernel dir without build/ does not count', () => {
    const root = tmp('kbundle-kr-');
    mkdirSync(join(root, '6.9.0-1-amd64', 'build'), { recursive: true });
    mkdirSync(join(root, '6.9.0-2-amd64'), { recursive: true });
    expect(resolveKernelTargets(['6.9.0-*'], [root])).toEqual([{ release: '6.9.0-1-amd64', headers: join(root, '6.9.0-1-amd64', 'build') }]);
    expect(() => resolveKernels(['6.9.0-2-amd64'], [root])).toThrow('kernel pattern "6.9.0-2-amd64" matches no kernel with headers under ' + root + ' (installed: 6.9.0-1-amd64)');
  });

  test('explicit headers dir is used as given', () => {
    const headers = join(fakeRoot(), '6.1.0-56-amd64', 'build');
    expect(resolveKernelTargets([{ pattern: '7.0.0-x', headers }])).toEqual([{ release: '7.0.0-x', headers }]);
  });
});

// mkdeb, mkdsc, mkbmdeb, mkrpm, mkkmp, mkdriverdisk: real builds of the example
// module for two kernels, checked by each format's own consumers (dpkg-deb,
// lintian, dpkg, dpkg-source/dpkg-buildpackage, rpm, rpmlint, createrepo_c's
// repodata, xorriso, modinfo).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { readEntries } from '../helpers/bundles.js';
import { addSource, makeScratch, sh } from '../helpers/scratch.js';
import {
  filesIn,
  kb,
  KERNELS,
  lintianProblems,
  moduleImage,
  ok,
  outDir,
  rpmlintProblems,
  setUp,
  sha256,
  SIGNER,
  TRUST,
  unpackDeb,
  unpackRpm,
  walk,
  type Fixture,
} from './helpers.js';

let fx: Fixture;
const [K1, K2] = KERNELS;
const ks = KERNELS.flatMap((k) => ['-k', k]);

beforeAll(() => {
  fx = setUp();
});

/** The extension the scratch install tree's own modules of kernel k use ('' when it has none compressed). */
function kernelExt(installTree: string, k: string): string {
  const found = sh('sh', ['-c', 'find "$1" -name "*.ko*" ! -path "*/updates/*" | head -1', 'sh', join(installTree, k)]).stdout.trim();
  const m = /\.ko(\.gz|\.xz|\.zst)$/.exec(found);
  return m ? m[1]! : '';
}

/** Module blobs of the bundle by kernel, read straight from its tar (not through kbundle). */
async function bundleModules(bundle: string): Promise<Map<string, Buffer>> {
  const entries = await readEntries(bundle);
  const byDigest = (d: string) => entries.get(`blobs/sha256/${d.replace(/^sha256:/, '')}`)!;
  const out = new Map<string, Buffer>();
  // Walk every JSON blob for target configs (they list modules with their digests).
  for (const [name, buf] of entries) {
    if (!name.startsWith('blobs/')) continue;
    let v: unknown;
    try {
      v = JSON.parse(buf.toString('utf8'));
    } catch {
      continue;
    }
    const o = v as { kernelRelease?: string; modules?: Array<{ name: string; digest: string }> };
    if (o.kernelRelease && Array.isArray(o.modules)) for (const m of o.modules) out.set(`${o.kernelRelease}/${m.name}`, byDigest(m.digest));
  }
  return out;
}

describe('from the DKMS tree', () => {
  it('mkdeb: <m>-dkms_<v>-1_all.deb with the source and dkms scripts; lintian clean; mkdsc round trip gives the same bytes', () => {
    const out = outDir();
    const [deb] = ok(kb(['mkdeb', 'hello/1.0', ...fx.tree, '-o', out]));
    expect(deb).toBe(join(out, 'hello-dkms_1.0-1_all.deb'));
    const info = ok(sh('dpkg-deb', ['-I', deb!])).join('\n');
    expect(info).toMatch(/Package: hello-dkms/);
    expect(info).toMatch(/Version: 1\.0-1/);
    expect(info).toMatch(/Architecture: all/);
    expect(info).toMatch(/Depends: dkms \(>= 2\.1\.0\.0\)/);
    const contents = ok(sh('dpkg-deb', ['-c', deb!])).join('\n');
    for (const f of ['./usr/src/hello-1.0/dkms.conf', './usr/src/hello-1.0/hello.c', './usr/src/hello-1.0/Makefile', './usr/share/doc/hello-dkms/copyright']) expect(contents).toContain(f);
    expect(contents).toMatch(/root\/root/);
    const postinst = ok(sh('dpkg-deb', ['-I', deb!, 'postinst'])).join('\n');
    expect(postinst).toContain('/usr/lib/dkms/common.postinst "$DKMS_NAME" "$DKMS_VERSION"');
    const prerm = ok(sh('dpkg-deb', ['-I', deb!, 'prerm'])).join('\n');
    expect(prerm).toContain('dkms remove -m "$DKMS_NAME" -v "$DKMS_VERSION" --all');

    const dsc = ok(kb(['mkdsc', 'hello/1.0', ...fx.tree, '-o', out]));
    expect(dsc.map((p) => p.slice(out.length + 1))).toEqual(['hello_1.0-1.dsc', 'hello_1.0.orig.tar.gz', 'hello_1.0-1.debian.tar.xz']);
    expect(lintianProblems([deb!, dsc[0]!])).toEqual([]);

    // The round trip a Debian builder does with the source package.
    const rt = mkdtempSync(join(tmpdir(), 'kbundle-dsc-'));
    ok(sh('dpkg-source', ['-x', dsc[0]!, join(rt, 'hello-1.0')]));
    expect(readFileSync(join(rt, 'hello-1.0/hello.c'))).toEqual(readFileSync(join(fx.scratch.sourceTree, 'hello-1.0/hello.c')));
    const b = sh('sh', ['-c', 'cd "$1" && umask 077 && dpkg-buildpackage -b -us -uc', 'sh', join(rt, 'hello-1.0')], { SOURCE_DATE_EPOCH: '' });
    expect(b.code, b.stderr).toBe(0);
    expect(sha256(join(rt, 'hello-dkms_1.0-1_all.deb'))).toBe(sha256(deb!));
  });

  it('mkbmdeb: one .deb per kernel with the signed modules in updates/dkms, compressed as that kernel does; dpkg installs it, depmod indexes it, purge cleans up', () => {
    const out = outDir();
    const debs = ok(kb(['mkbmdeb', 'hello/1.0', ...ks, ...fx.tree, '-o', out]));
    expect(kernelExt(fx.scratch.installTree, K2)).toBe('.xz');
    expect(debs).toEqual(KERNELS.map((k) => join(out, `hello-modules-${k}_1.0_amd64.deb`)));
    for (const [i, k] of KERNELS.entries()) {
      const ext = kernelExt(fx.scratch.installTree, k);
      const info = ok(sh('dpkg-deb', ['-I', debs[i]!])).join('\n');
      expect(info).toContain(`Depends: linux-image-${k}`);
      expect(info).toMatch(/Conflicts: hello-dkms/);
      expect(info).toMatch(/Replaces: hello-dkms/);
      const files = ok(sh('dpkg-deb', ['-c', debs[i]!])).filter((l) => l.includes('/lib/modules/'));
      expect(files.some((l) => l.endsWith(`./lib/modules/${k}/updates/dkms/hello.ko${ext}`))).toBe(true);
      const data = unpackDeb(debs[i]!);
      const ko = join(data, `lib/modules/${k}/updates/dkms/hello.ko${ext}`);
      // The DKMS tree's signed build, same ELF image.
      const built = join(fx.scratch.dkmsTree, 'hello/1.0', k, 'x86_64/module');
      const [builtKo] = readdirSync(built).filter((n) => n.startsWith('hello.ko'));
      expect(moduleImage(ko).equals(moduleImage(join(built, builtKo!)))).toBe(true);
      expect(ok(sh('modinfo', ['-F', 'signer', ko]))).toEqual([SIGNER]);
    }
    expect(lintianProblems(debs)).toEqual([]);

    // dpkg into a scratch root; its maintainer scripts run without chroot and honour DPKG_ROOT.
    const root = mkdtempSync(join(tmpdir(), 'kbundle-dpkgroot-'));
    for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', `lib/modules/${K2}/kernel`]) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/status'), '');
    writeFileSync(join(root, 'var/lib/dpkg/available'), '');
    const dpkg = (...a: string[]) => sh('dpkg', [`--root=${root}`, '--force-not-root', '--force-script-chrootless', '--force-depends', '--log=/dev/null', ...a]);
    const ext = kernelExt(fx.scratch.installTree, K2);
    const i = dpkg('-i', debs[1]!);
    expect(i.code, i.stderr).toBe(0);
    expect(existsSync(join(root, `lib/modules/${K2}/updates/dkms/hello.ko${ext}`))).toBe(true);
    expect(readFileSync(join(root, `lib/modules/${K2}/modules.dep`), 'utf8')).toContain(`updates/dkms/hello.ko${ext}:`);
    expect(ok(dpkg('-s', `hello-modules-${K2}`)).join('\n')).toMatch(/Status: install ok installed/);
    const p = dpkg('--purge', `hello-modules-${K2}`);
    expect(p.code, p.stderr).toBe(0);
    expect(existsSync(join(root, `lib/modules/${K2}/updates/dkms/hello.ko${ext}`))).toBe(false);
    expect(readFileSync(join(root, `lib/modules/${K2}/modules.dep`), 'utf8')).not.toContain('hello');
  });

  it('mkrpm and mkkmp: rpm reads name, files, provides and scripts; rpmlint clean', () => {
    const out = outDir();
    const rpms = ok(kb(['mkrpm', 'hello/1.0', ...ks, ...fx.tree, '-o', out]));
    const kmp = ok(kb(['mkkmp', 'hello/1.0', ...ks, ...fx.tree, '-o', out]));
    const rel = (k: string) => k.replace(/-/g, '_');
    expect(rpms.map((p) => p.slice(out.length + 1))).toEqual(['hello-dkms-1.0-1.noarch.rpm', ...KERNELS.map((k) => `kmod-hello-1.0-1.${rel(k)}.x86_64.rpm`)]);
    expect(kmp.map((p) => p.slice(out.length + 1))).toEqual(KERNELS.map((k) => `hello-kmp-${k.split('-').pop()}-1.0_k${rel(k.slice(0, k.lastIndexOf('-')))}-1.x86_64.rpm`));

    const q = (...a: string[]) => ok(sh('rpm', a)).join('\n');
    expect(q('-qip', rpms[0]!)).toMatch(/Name\s+: hello-dkms[\s\S]*Build Host\s*: reproducible/);
    expect(q('-qlp', rpms[0]!)).toContain('/usr/src/hello-1.0/dkms.conf');
    const dk = q('-qp', '--provides', '--requires', '--scripts', rpms[0]!);
    expect(dk).toMatch(/^dkms$/m);
    expect(dk).toContain("dkms remove -m 'hello' -v '1.0' --all --rpm_safe_upgrade");
    for (const [i, k] of KERNELS.entries()) {
      const ext = kernelExt(fx.scratch.installTree, k);
      expect(q('-qlp', rpms[i + 1]!).split('\n')).toContain(`/lib/modules/${k}/extra/hello/hello.ko${ext}`);
      const prov = q('-qp', '--provides', '--scripts', rpms[i + 1]!);
      expect(prov).toMatch(/^kernel-modules >= /m);
      expect(prov).toContain(`depmod -a ${k}`);
      expect(q('-qlp', kmp[i]!).split('\n')).toEqual([`/lib/modules/${k}/updates/hello.ko${ext}`]);
      const kp = q('-qp', '--provides', '--scripts', kmp[i]!);
      expect(kp).toMatch(/^multiversion\(kernel\)$/m);
      expect(kp).toMatch(/^hello-kmp = 1\.0$/m);
      expect(kp).toContain('weak-modules2 --add-kmp');
      const payload = unpackRpm(kmp[i]!);
      expect(ok(sh('modinfo', ['-F', 'signer', join(payload, `lib/modules/${k}/updates/hello.ko${ext}`)]))).toEqual([SIGNER]);
    }
    expect(rpmlintProblems([...rpms, ...kmp])).toEqual([]);

    // rpm installs them into a scratch root (scripts off: rpm would chroot into it for them) and erases them.
    const root = mkdtempSync(join(tmpdir(), 'kbundle-rpmroot-'));
    const rpmq = (...a: string[]) => sh('rpm', [`--root=${root}`, ...a]);
    expect(rpmq('--initdb').code).toBe(0);
    const inst = rpmq('-i', '--nodeps', '--noscripts', rpms[1]!, kmp[1]!);
    expect(inst.code, inst.stderr).toBe(0);
    const extK1 = kernelExt(fx.scratch.installTree, K1);
    const extK2 = kernelExt(fx.scratch.installTree, K2);
    expect(existsSync(join(root, `lib/modules/${K1}/extra/hello/hello.ko${extK1}`))).toBe(true);
    expect(existsSync(join(root, `lib/modules/${K2}/updates/hello.ko${extK2}`))).toBe(true);
    expect(ok(rpmq('-qa')).sort()).toEqual([rpms[1]!, kmp[1]!].map((p) => p.slice(out.length + 1).replace(/\.rpm$/, '')).sort());
    expect(rpmq('-e', '--noscripts', 'kmod-hello', `hello-kmp-${K2.split('-').pop()}`).code).toBe(0);
    expect(existsSync(join(root, `lib/modules/${K1}/extra/hello/hello.ko${extK1}`))).toBe(false);
    expect(existsSync(join(root, `lib/modules/${K2}/updates/hello.ko${extK2}`))).toBe(false);
  });

  it('mkdriverdisk (rhel, ISO): label OEMDRV, rhdd3, rpms/x86_64 with repodata listing every kmod RPM', () => {
    const out = outDir();
    const iso = join(out, 'dd.iso');
    expect(ok(kb(['mkdriverdisk', 'hello/1.0', ...ks, ...fx.tree, '-o', iso]))).toEqual([iso]);
    const pvd = sh('xorriso', ['-indev', iso, '-pvd_info']);
    expect(`${pvd.stdout}${pvd.stderr}`).toMatch(/Volume Id\s*:\s*OEMDRV/);
    const found = sh('xorriso', ['-indev', iso, '-find', '/', '-type', 'f']).stdout;
    expect(found).toContain("'/rhdd3'");
    expect(found).toContain("'/rpms/x86_64/repodata/repomd.xml'");
    const rpms = [...found.matchAll(/'\/rpms\/x86_64\/([^/']+\.rpm)'/g)].map((m) => m[1]).sort();
    expect(rpms).toEqual(KERNELS.map((k) => `kmod-hello-1.0-1.${k.replace(/-/g, '_')}.x86_64.rpm`).sort());
    // createrepo_c's primary.xml lists each package with its location.
    const x = mkdtempSync(join(tmpdir(), 'kbundle-iso-'));
    ok(sh('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', x]));
    const repomd = readFileSync(join(x, 'rpms/x86_64/repodata/repomd.xml'), 'utf8');
    const primaryHref = /<data type="primary">[\s\S]*?<location href="([^"]+)"/.exec(repomd)![1]!;
    const primary = gunzipSync(readFileSync(join(x, 'rpms/x86_64', primaryHref))).toString('utf8');
    expect(primary).toContain(`packages="${rpms.length}"`);
    for (const r of rpms) expect(primary).toContain(`<location href="${r}"/>`);
    expect(readFileSync(join(x, 'rhdd3'), 'utf8')).toMatch(/^Driver Update Disk: hello 1\.0\n$/);
  });

  it('mkdriverdisk (suse, directory and tar): linux/suse/<arch>-<release>/install KMPs and modules/', () => {
    const out = outDir();
    const dir = join(out, 'dud');
    const j = JSON.parse(ok(kb(['mkdriverdisk', 'hello/1.0', '-k', K1, ...fx.tree, '--distro', 'suse', '-o', dir, '--json'])).join('\n'));
    expect(j).toEqual({ format: 'mkdriverdisk', module: 'hello', version: '1.0', files: [dir], warnings: [] });
    expect(walk(dir)).toEqual([`linux/suse/x86_64-sle15/install/${`hello-kmp-${K1.split('-').pop()}-1.0_k${K1.slice(0, K1.lastIndexOf('-')).replace(/-/g, '_')}-1.x86_64.rpm`}`, 'linux/suse/x86_64-sle15/modules/hello.ko']);
    expect(ok(sh('modinfo', ['-F', 'signer', join(dir, 'linux/suse/x86_64-sle15/modules/hello.ko')]))).toEqual([SIGNER]);
    const tar = join(out, 'dud.tar');
    const r = kb(['mkdriverdisk', 'hello/1.0', ...ks, ...fx.tree, '--distro', 'suse', '-o', tar]);
    expect(ok(r)).toEqual([tar]);
    expect(r.stderr).toMatch(/modules\/ is left out/);
    const list = ok(sh('tar', ['-tvf', tar]));
    expect(list.filter((l) => l.endsWith('.rpm'))).toHaveLength(2);
    expect(list.every((l) => l.includes('0/0'))).toBe(true);
  });
});

describe('from a bundle', () => {
  it('every format verifies the bundle and carries its module bytes unchanged (signatures intact)', async () => {
    const out = outDir();
    const mods = await bundleModules(fx.bundle);
    expect(mods.size).toBe(2);
    const debs = ok(kb(['bundle', 'mkbmdeb', fx.bundle, ...TRUST, '-o', out, '--installtree', fx.scratch.installTree]));
    const kmps = ok(kb(['bundle', 'mkkmp', fx.bundle, ...TRUST, '-o', out, '--compress', 'zst']));
    const rpms = ok(kb(['bundle', 'mkrpm', fx.bundle, ...TRUST, '-o', out]));
    const deb = ok(kb(['bundle', 'mkdeb', fx.bundle, ...TRUST, '-o', out]));
    expect(debs).toHaveLength(2);
    expect(kmps).toHaveLength(2);
    expect(rpms).toHaveLength(3);
    expect(deb).toEqual([join(out, 'hello-dkms_1.0-1_all.deb')]);
    for (const [i, k] of KERNELS.entries()) {
      const fromBundle = mods.get(`${k}/hello`)!;
      const ext = kernelExt(fx.scratch.installTree, k);
      const d = unpackDeb(debs[i]!);
      expect(moduleImage(join(d, `lib/modules/${k}/updates/dkms/hello.ko${ext}`)).equals(fromBundle)).toBe(true);
      const p = unpackRpm(kmps[i]!);
      expect(moduleImage(join(p, `lib/modules/${k}/updates/hello.ko.zst`)).equals(fromBundle)).toBe(true);
      const kmod = unpackRpm(rpms[i + 1]!);
      const [f] = walk(kmod);
      expect(moduleImage(join(kmod, f!)).equals(fromBundle)).toBe(true);
      expect(ok(sh('modinfo', ['-F', 'signer', join(kmod, f!)]))).toEqual([SIGNER]);
    }
    // The source package from the bundle's source layer: same files as the module source.
    const src = unpackDeb(deb[0]!);
    expect(readFileSync(join(src, 'usr/src/hello-1.0/hello.c'))).toEqual(readFileSync(join(fx.scratch.sourceTree, 'hello-1.0/hello.c')));
    // Same source, same SOURCE_DATE_EPOCH: the bundle's mkdeb is byte for byte the DKMS tree's.
    const treeOut = outDir();
    const [treeDeb] = ok(kb(['mkdeb', 'hello/1.0', ...fx.tree, '-o', treeOut]));
    expect(sha256(deb[0]!)).toBe(sha256(treeDeb!));
    // lintian ran on the same formats from the DKMS tree above; rpmlint is quick enough to run again.
    expect(rpmlintProblems([...kmps, ...rpms])).toEqual([]);
  });

  it('reproducible: two runs in different directories with different umasks (and sources with different modes and mtimes) give the same bytes', () => {
    const run = (umask: string) => {
      const out = outDir();
      const cwd = mkdtempSync(join(tmpdir(), 'kbundle-cwd-'));
      for (const f of ['mkdeb', 'mkdsc', 'mkbmdeb', 'mkrpm', 'mkkmp']) ok(kb(['bundle', f, fx.bundle, ...TRUST, '-o', out], { cwd, umask }));
      ok(kb(['bundle', 'mkdriverdisk', fx.bundle, ...TRUST, '-o', join(out, 'rhel.iso')], { cwd, umask }));
      ok(kb(['bundle', 'mkdriverdisk', fx.bundle, ...TRUST, '--distro', 'suse', '-o', join(out, 'suse.tar')], { cwd, umask }));
      return { out, sums: Object.fromEntries(filesIn(out).map((n) => [n, sha256(join(out, n))])) };
    };
    const { out: outA, sums: a } = run('022');
    const b = run('077').sums;
    expect(Object.keys(a)).toHaveLength(13);
    expect(b).toEqual(a);
    // The disk's kmod RPMs are mkrpm's, byte for byte.
    const x = mkdtempSync(join(tmpdir(), 'kbundle-iso-'));
    ok(sh('xorriso', ['-osirrox', 'on', '-indev', join(outA, 'rhel.iso'), '-extract', '/rpms/x86_64', x]));
    const onDisk = filesIn(x).filter((n) => n.endsWith('.rpm'));
    expect(onDisk).toHaveLength(2);
    for (const n of onDisk) expect(sha256(join(x, n))).toBe(a[n]);
    // From two DKMS trees whose source copies differ in file modes and mtimes: the same bytes too.
    const other = makeScratch([]);
    const src = addSource(other, 'bundles/hello-1.0');
    chmodSync(join(src, 'hello.c'), 0o600);
    chmodSync(join(src, 'Makefile'), 0o640);
    utimesSync(join(src, 'dkms.conf'), new Date(), new Date());
    const otherTree = [...other.treeArgs, '--etcdir', other.etcDir];
    ok(kb(['add', 'hello/1.0', ...otherTree]));
    const outB = outDir();
    for (const f of ['mkdeb', 'mkdsc']) ok(kb([f, 'hello/1.0', ...otherTree, '-o', outB], { umask: '077' }));
    ok(kb(['mkrpm', 'hello/1.0', ...otherTree, '-o', outB], { umask: '077' }));
    const fromTree = filesIn(outB);
    expect(fromTree).toEqual(['hello-dkms-1.0-1.noarch.rpm', 'hello-dkms_1.0-1_all.deb', 'hello_1.0-1.debian.tar.xz', 'hello_1.0-1.dsc', 'hello_1.0.orig.tar.gz']);
    for (const n of fromTree) expect(sha256(join(outB, n)), n).toBe(a[n]);
    // ... and a different SOURCE_DATE_EPOCH changes them (the check above can fail).
    const out = outDir();
    ok(kb(['bundle', 'mkdriverdisk', fx.bundle, ...TRUST, '-o', join(out, 'rhel.iso')], { env: { SOURCE_DATE_EPOCH: '1700000001' } }));
    expect(sha256(join(out, 'rhel.iso'))).not.toBe(a['rhel.iso']);
  });
});

describe('bad input: a clear error, nothing written', () => {
  it('unknown module, kernel not built, untrusted or tampered bundle, missing tool, existing output', async () => {
    const out = outDir();
    const cases: Array<[string[], number, RegExp, NodeJS.ProcessEnv?]> = [
      [['mkdeb', 'nosuch/1.0', ...fx.tree, '-o', out], 61, /not in the DKMS tree/],
      [['mkbmdeb', 'hello/1.0', '-k', '9.9.9-nosuch', ...fx.tree, '-o', out], 62, /not built for kernel 9\.9\.9-nosuch/],
      [['bundle', 'mkbmdeb', fx.bundle, ...TRUST, '-k', '9.9.9-nosuch', '-o', out], 62, /no binary for kernel 9\.9\.9-nosuch/],
      [['bundle', 'mkrpm', fx.bundle, '-o', out], 33, /no trusted bundle key/],
      [['mkrpm', 'hello/1.0', ...fx.tree, '-o', out], 60, /^Error! rpmbuild not found: install the Debian package rpm/m, { PATH: '/nonexistent' }],
      [['mkdriverdisk', 'hello/1.0', ...fx.tree, '--distro', 'windows', '-o', join(out, 'x.iso')], 65, /--distro must be rhel or suse/],
    ];
    for (const [args, code, msg, env] of cases) {
      const r = kb(args, { env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(msg);
    }
    // A bundle signed by another key.
    const other = mkdtempSync(join(tmpdir(), 'kbundle-key-'));
    ok(kb(['bundle', 'keygen', join(other, 'o')]));
    expect(kb(['bundle', 'mkbmdeb', fx.bundle, '--trust', join(other, 'o.pub'), '-o', out]).code).toBe(33);
    // A flipped byte in the bundle.
    const bad = join(other, 'bad.kbundle');
    const bytes = readFileSync(fx.bundle);
    const at = bytes.indexOf((await bundleModules(fx.bundle)).get(`${K1}/hello`)!);
    expect(at).toBeGreaterThan(0);
    bytes[at + 100] ^= 0xff;
    writeFileSync(bad, bytes);
    const t = kb(['bundle', 'mkbmdeb', bad, ...TRUST, '-o', out]);
    expect(t.code).toBeGreaterThanOrEqual(30);
    expect(t.code).toBeLessThanOrEqual(40);
    expect(filesIn(out)).toEqual([]);
    // An existing output is kept unless --force.
    ok(kb(['mkdeb', 'hello/1.0', ...fx.tree, '-o', out]));
    const again = kb(['mkdeb', 'hello/1.0', ...fx.tree, '-o', out]);
    expect(again.code).toBe(64);
    expect(again.stderr).toMatch(/exists; pass --force/);
    ok(kb(['mkdeb', 'hello/1.0', ...fx.tree, '-o', out, '--force']));
    expect(filesIn(out)).toEqual(['hello-dkms_1.0-1_all.deb']);
  });
});

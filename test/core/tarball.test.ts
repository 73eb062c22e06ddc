// mktarball / ldtarball: DKMS's layout, every kernel, reproducible, and
// round trips with Debian's real dkms in both directions.
import { cpSync, existsSync, readFileSync, readdirSync, utimesSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { haveDkms, realDkms } from '../helpers/real-dkms.js';
import { addSource, kbundle, makeScratch, sh } from '../helpers/scratch.js';

const [K1, K2] = twoKernels();
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const listing = (f: string) => sh('tar', ['-tzf', f]).stdout.split('\n').filter(Boolean).sort();

describe('mktarball', () => {
  it('archives every kernel in DKMS layout, reproducibly', () => {
    const s = makeScratch([K1, K2]);
    addSource(s, 'bundles/hello-1.0');
    const args = [...s.treeArgs, '--etcdir', s.etcDir];
    expect(kbundle(['build', 'hello/1.0', '-k', K1, '-k', K2, ...args]).code).toBe(0);
    const r = kbundle(['mktarball', 'hello/1.0', '--all', ...args]);
    expect(r.code, r.stderr).toBe(0);
    const [ka, kb] = [K1, K2].sort();
    const name = `hello-1.0-kernel${ka}-x86_64-kernel${kb}-x86_64.dkms.tar.gz`;
    const file = join(s.dkmsTree, 'hello/1.0/tarball', name);
    expect(r.stdout).toContain(file);
    const entries = listing(file);
    for (const k of [K1, K2]) {
      expect(entries.some((e) => e.startsWith(`./dkms_main_tree/${k}/x86_64/module/hello.ko`))).toBe(true);
      expect(entries).toContain(`./dkms_main_tree/${k}/x86_64/log/make.log`);
    }
    expect(entries).toContain('./dkms_source_tree/dkms.conf');
    expect(entries).toContain('./dkms_source_tree/hello.c');

    // Same content, different mtimes of the inputs under SOURCE_DATE_EPOCH: same bytes.
    const first = sha(file);
    utimesSync(join(s.sourceTree, 'hello-1.0/hello.c'), new Date(), new Date());
    const again = kbundle(['mktarball', 'hello/1.0', '--all', '--archive', join(s.root, 'again.dkms.tar.gz'), ...args], { SOURCE_DATE_EPOCH: '1700000000' });
    const third = kbundle(['mktarball', 'hello/1.0', '--all', '--archive', join(s.root, 'third.dkms.tar.gz'), ...args], { SOURCE_DATE_EPOCH: '1700000000' });
    expect(again.code).toBe(0);
    expect(third.code).toBe(0);
    expect(sha(join(s.root, 'again.dkms.tar.gz'))).toBe(sha(join(s.root, 'third.dkms.tar.gz')));
    expect(first).toMatch(/^[0-9a-f]{64}$/);

    const bo = kbundle(['mktarball', 'hello/1.0', '-k', K1, '--binaries-only', '--archive', join(s.root, 'bo.dkms.tar.gz'), ...args]);
    expect(bo.code).toBe(0);
    const boEntries = listing(join(s.root, 'bo.dkms.tar.gz'));
    expect(boEntries).toContain('./dkms_binaries_only/dkms.conf');
    expect(boEntries).toContain('./dkms_binaries_only/PACKAGE_NAME');
    expect(boEntries.some((e) => e.startsWith('./dkms_source_tree'))).toBe(false);
    const both = kbundle(['mktarball', 'hello/1.0', '--source-only', '--binaries-only', ...args]);
    expect(both.code).toBe(8);
  });

  it('ldtarball loads every kernel of a multi-kernel tarball into a fresh tree', () => {
    const a = makeScratch([K1, K2]);
    addSource(a, 'bundles/hello-1.0');
    const aargs = [...a.treeArgs, '--etcdir', a.etcDir];
    expect(kbundle(['build', 'hello/1.0', '-k', K1, '-k', K2, ...aargs]).code).toBe(0);
    const tar = join(a.root, 'hello.dkms.tar.gz');
    expect(kbundle(['mktarball', 'hello/1.0', '--all', '--archive', tar, ...aargs]).code).toBe(0);

    const b = makeScratch([K1, K2]);
    const bargs = [...b.treeArgs, '--etcdir', b.etcDir];
    const r = kbundle(['ldtarball', tar, ...bargs]);
    expect(r.code, r.stderr).toBe(0);
    expect(kbundle(['status', ...bargs]).stdout.trim().split('\n')).toEqual([`hello/1.0, ${K1}, x86_64: built`, `hello/1.0, ${K2}, x86_64: built`].sort());
    expect(existsSync(join(b.sourceTree, 'hello-1.0/dkms.conf'))).toBe(true);
    // Installing needs no compiler: the loaded binaries are used as they are.
    const inst = kbundle(['install', 'hello/1.0', '-k', K2, ...bargs], { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CC: '/nonexistent' });
    expect(inst.code, inst.stderr).toBe(0);
    const built = readdirSync(join(a.dkmsTree, 'hello/1.0', K2, 'x86_64/module')).find((n) => n.startsWith('hello.ko'))!;
    expect(sha(join(b.installTree, K2, 'updates/dkms', built))).toBe(sha(join(a.dkmsTree, 'hello/1.0', K2, 'x86_64/module', built)));
  });
});

describe.skipIf(!haveDkms)('tarballs with Debian dkms 3.0.10', () => {
  it('a kbundle tarball loads in real dkms', () => {
    const a = makeScratch([K1]);
    addSource(a, 'bundles/hello-1.0');
    const aargs = [...a.treeArgs, '--etcdir', a.etcDir];
    expect(kbundle(['build', 'hello/1.0', '-k', K1, ...aargs]).code).toBe(0);
    const tar = join(a.root, 'hello-1.0-kb.dkms.tar.gz');
    expect(kbundle(['mktarball', 'hello/1.0', '-k', K1, '--archive', tar, ...aargs]).code).toBe(0);

    const b = makeScratch([K1]);
    const d = realDkms(b, ['ldtarball', tar]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(realDkms(b, ['status']).stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: built`);
    const inst = realDkms(b, ['install', 'hello/1.0', '-k', K1]);
    expect(inst.code, inst.stdout + inst.stderr).toBe(0);
    expect(kbundle(['status', ...b.treeArgs]).stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: installed`);
  });

  it('a real dkms tarball loads in kbundle', () => {
    const a = makeScratch([K1]);
    addSource(a, 'bundles/hello-1.0');
    expect(realDkms(a, ['build', 'hello/1.0', '-k', K1]).code).toBe(0);
    const tar = join(a.root, 'from-dkms.dkms.tar.gz');
    const mk = realDkms(a, ['mktarball', 'hello/1.0', '-k', K1, '--archive', tar]);
    expect(mk.code, mk.stdout + mk.stderr).toBe(0);
    const made = existsSync(tar) ? tar : join(a.dkmsTree, 'hello/1.0/tarball', 'from-dkms.dkms.tar.gz');
    cpSync(made, join(a.root, 'copy.dkms.tar.gz'));

    const b = makeScratch([K1]);
    const bargs = [...b.treeArgs, '--etcdir', b.etcDir];
    const r = kbundle(['ldtarball', join(a.root, 'copy.dkms.tar.gz'), ...bargs]);
    expect(r.code, r.stderr).toBe(0);
    expect(kbundle(['status', ...bargs]).stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: built`);
    expect(kbundle(['install', 'hello/1.0', '-k', K1, ...bargs]).code).toBe(0);
    expect(kbundle(['status', ...bargs]).stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: installed`);
  });
});

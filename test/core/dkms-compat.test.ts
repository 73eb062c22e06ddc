// kbundle and Debian's real dkms read each other's trees, and originals are
// archived and restored.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { installedKernels, twoKernels } from '../helpers/kernels.js';
import { haveDkms, realDkms } from '../helpers/real-dkms.js';
import { addSource, kbundle, makeScratch } from '../helpers/scratch.js';

const [K1, K2] = twoKernels();

describe('original modules', () => {
  it('an in-tree module of the same name is archived on install and restored on uninstall', () => {
    const s = makeScratch([K1]);
    addSource(s, 'bundles/hello-1.0');
    const run = (...a: string[]) => kbundle([...a, ...s.treeArgs, '--etcdir', s.etcDir]);
    // Any real module file will do as the "in-tree hello" (depmod must accept it).
    const donor = installedKernels()
      .map((k) => `/lib/modules/${k}/kernel/drivers/net`)
      .filter((d) => existsSync(d))
      .flatMap((d) => readdirSync(d).filter((n) => n.startsWith('dummy.ko')).map((n) => join(d, n)))[0];
    if (!donor) throw new Error('no in-tree dummy.ko* under /lib/modules/*/kernel/drivers/net to use as an original module');
    const orig = join(s.installTree, K1, 'kernel/drivers/misc', `hello${donor.slice(donor.indexOf('.ko'))}`);
    mkdirSync(join(s.installTree, K1, 'kernel/drivers/misc'), { recursive: true });
    copyFileSync(donor, orig);
    const origBytes = readFileSync(orig);

    const r = run('install', 'hello/1.0', '-k', K1);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(orig)).toBe(false);
    const archive = join(s.dkmsTree, 'hello/original_module', K1, 'x86_64');
    const archived = join(archive, orig.split('/').pop()!);
    expect(readFileSync(archived).equals(origBytes)).toBe(true);
    expect(readFileSync(`${archived}.origin`, 'utf8').trim()).toBe(orig);
    expect(run('status').stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: installed (original_module exists)`);

    expect(run('uninstall', 'hello/1.0', '-k', K1).code).toBe(0);
    expect(readFileSync(orig).equals(origBytes)).toBe(true);
    expect(existsSync(join(s.dkmsTree, 'hello/original_module'))).toBe(false);
    expect(run('status').stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: built`);
  });
});

describe.skipIf(!haveDkms)('interoperability with Debian dkms 3.0.10', () => {
  it('real dkms status agrees with kbundle status on a tree kbundle wrote', () => {
    const s = makeScratch([K1, K2]);
    addSource(s, 'bundles/hello-1.0');
    addSource(s, 'bundles/twomods-2.1');
    const run = (...a: string[]) => kbundle([...a, ...s.treeArgs, '--etcdir', s.etcDir]);
    expect(run('install', 'hello/1.0', '-k', K1).code).toBe(0);
    expect(run('build', 'hello/1.0', '-k', K2).code).toBe(0);
    expect(run('add', 'twomods/2.1').code).toBe(0);
    const ours = run('status').stdout;
    const theirs = realDkms(s, ['status']);
    expect(theirs.code).toBe(0);
    expect(theirs.stdout).toBe(ours);
    expect(ours.trim().split('\n')).toEqual([`hello/1.0, ${K1}, x86_64: installed`, `hello/1.0, ${K2}, x86_64: built`, 'twomods/2.1: added']);
  });

  it('kbundle status, uninstall and remove work on a tree real dkms wrote', () => {
    const s = makeScratch([K1]);
    addSource(s, 'bundles/hello-1.0');
    const d = realDkms(s, ['install', 'hello/1.0', '-k', K1]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const run = (...a: string[]) => kbundle([...a, ...s.treeArgs, '--etcdir', s.etcDir]);
    expect(run('status').stdout).toBe(realDkms(s, ['status']).stdout);
    expect(run('status').stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: installed`);
    const u = run('uninstall', 'hello/1.0', '-k', K1);
    expect(u.code, u.stderr).toBe(0);
    expect(readdirSync(join(s.installTree, K1, 'updates/dkms'))).toEqual([]);
    expect(realDkms(s, ['status']).stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: built`);
    expect(run('remove', 'hello/1.0', '--all').code).toBe(0);
    expect(realDkms(s, ['status']).stdout.trim()).toBe('');
  });

  it('real dkms uninstalls what kbundle installed', () => {
    const s = makeScratch([K1]);
    addSource(s, 'bundles/hello-1.0');
    expect(kbundle(['install', 'hello/1.0', '-k', K1, ...s.treeArgs, '--etcdir', s.etcDir]).code).toBe(0);
    const d = realDkms(s, ['uninstall', 'hello/1.0', '-k', K1]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const dir = join(s.installTree, K1, 'updates/dkms');
    expect(existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('hello')) : []).toEqual([]);
    expect(kbundle(['status', ...s.treeArgs]).stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: built`);
  });
});

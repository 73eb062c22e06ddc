// add -> build -> install -> uninstall -> remove for two real kernels, with
// the status lines a user sees at every step.
import { appendFileSync, existsSync, lstatSync, readFileSync, readlinkSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { addSource, kbundle, makeScratch, sh, type Scratch } from '../helpers/scratch.js';

const [K1, K2] = twoKernels();

describe('hello module lifecycle on two kernels', () => {
  let s: Scratch;
  const run = (...args: string[]) => kbundle([...args, ...s.treeArgs, '--etcdir', s.etcDir]);
  const status = () => run('status').stdout.trim().split('\n').filter(Boolean);

  beforeAll(() => {
    s = makeScratch([K1, K2]);
    addSource(s, 'bundles/hello-1.0');
  });

  it('add registers the source and status says added', () => {
    const r = run('add', 'hello/1.0');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readlinkSync(join(s.dkmsTree, 'hello/1.0/source'))).toBe(join(s.sourceTree, 'hello-1.0'));
    expect(status()).toEqual(['hello/1.0: added']);
    const again = run('add', 'hello/1.0');
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('already contains: hello/1.0');
  });

  it('build -k A -k B builds both kernels (options after the action or before it)', () => {
    const r = kbundle(['--dkmstree', s.dkmsTree, 'build', '-k', K1, 'hello/1.0', '-k', K2, '--sourcetree', s.sourceTree, '--installtree', s.installTree, '--etcdir', s.etcDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(status()).toEqual([`hello/1.0, ${K1}, x86_64: built`, `hello/1.0, ${K2}, x86_64: built`].sort());
    for (const k of [K1, K2]) {
      const log = readFileSync(join(s.dkmsTree, `hello/1.0/${k}/x86_64/log/make.log`), 'utf8');
      expect(log).toContain(`DKMS make.log for hello-1.0 for kernel ${k} (x86_64)`);
      expect(log).toContain(`KERNELRELEASE=${k}`);
      expect(existsSync(join(s.dkmsTree, `hello/1.0/build-${k}-x86_64`))).toBe(false);
    }
  });

  it('built modules follow each kernel\'s own compression', () => {
    for (const k of [K1, K2]) {
      const files = readdirSync(join(s.dkmsTree, `hello/1.0/${k}/x86_64/module`));
      const netDir = join(s.installTree, k, 'kernel/drivers/net');
      const seeded = existsSync(netDir) ? readdirSync(netDir)[0]! : 'dummy.ko';
      const ext = seeded.replace(/^dummy\.ko/, '');
      expect(files).toContain(`hello.ko${ext}`);
      const info = sh('modinfo', ['-F', 'parm', join(s.dkmsTree, `hello/1.0/${k}/x86_64/module/hello.ko${ext}`)]);
      expect(info.stdout).toContain('whom:Who to greet');
      expect(sh('modinfo', ['-F', 'vermagic', join(s.dkmsTree, `hello/1.0/${k}/x86_64/module/hello.ko${ext}`)]).stdout.startsWith(`${k} `)).toBe(true);
    }
  });

  it('install puts the module under /updates/dkms, links kernel-<k>-<a>, runs depmod', () => {
    const r = run('install', 'hello/1.0', '-k', K1);
    expect(r.code, r.stderr).toBe(0);
    expect(status()).toEqual([`hello/1.0, ${K1}, x86_64: installed`, `hello/1.0, ${K2}, x86_64: built`].sort());
    const dir = join(s.installTree, K1, 'updates/dkms');
    const installed = readdirSync(dir).filter((n) => n.startsWith('hello.ko'));
    expect(installed.length).toBe(1);
    expect(readlinkSync(join(s.dkmsTree, `hello/kernel-${K1}-x86_64`))).toBe(`1.0/${K1}/x86_64`);
    const dep = readFileSync(join(s.installTree, K1, 'modules.dep'), 'utf8');
    expect(dep).toContain(`updates/dkms/${installed[0]}:`);
    const again = run('install', 'hello/1.0', '-k', K1);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already installed');
  });

  it('install on the second kernel, then status shows both installed', () => {
    expect(run('install', 'hello/1.0', '-k', K2).code).toBe(0);
    expect(status()).toEqual([`hello/1.0, ${K1}, x86_64: installed`, `hello/1.0, ${K2}, x86_64: installed`].sort());
    const json = JSON.parse(run('status', '--json').stdout);
    expect(json).toContainEqual({ module: 'hello', version: '1.0', kernel: K2, arch: 'x86_64', state: 'installed' });
  });

  it('status flags an installed module that differs from the built one', () => {
    const dir = join(s.installTree, K1, 'updates/dkms');
    const f = join(dir, readdirSync(dir).find((n) => n.startsWith('hello.ko'))!);
    const orig = readFileSync(f);
    appendFileSync(f, 'x');
    expect(status()).toContain(`hello/1.0, ${K1}, x86_64: installed (WARNING! Diff between built and installed module!)`);
    writeFileSync(f, orig);
    expect(status()).toContain(`hello/1.0, ${K1}, x86_64: installed`);
  });

  it('uninstall removes the file and the link; the module stays built', () => {
    const r = run('uninstall', 'hello/1.0', '-k', K1);
    expect(r.code, r.stderr).toBe(0);
    expect(status()).toEqual([`hello/1.0, ${K1}, x86_64: built`, `hello/1.0, ${K2}, x86_64: installed`].sort());
    expect(readdirSync(join(s.installTree, K1, 'updates/dkms')).filter((n) => n.startsWith('hello'))).toEqual([]);
    expect(existsSync(join(s.dkmsTree, `hello/kernel-${K1}-x86_64`))).toBe(false);
    expect(readFileSync(join(s.installTree, K1, 'modules.dep'), 'utf8')).not.toContain('hello');
  });

  it('remove --all forgets the module entirely', () => {
    const r = run('remove', 'hello/1.0', '--all');
    expect(r.code, r.stderr).toBe(0);
    expect(status()).toEqual([]);
    expect(existsSync(join(s.dkmsTree, 'hello'))).toBe(false);
    expect(existsSync(join(s.installTree, K2, 'updates/dkms/hello.ko'))).toBe(false);
    expect(lstatSync(join(s.sourceTree, 'hello-1.0')).isDirectory()).toBe(true);
  });
});

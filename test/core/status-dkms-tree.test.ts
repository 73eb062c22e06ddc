// `kbundle status` on a tree that Debian's real dkms 3.0.10 wrote (no kbundle
// records): the same lines as `dkms status`, through module changes, conf
// changes and a module installed where only dkms's second location finds
// it; static confs' layouts are remembered (no bash on the second run),
// dynamic ones are sourced every time.
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { haveDkms, realDkms } from '../helpers/real-dkms.js';
import { addSource, BIN, kbundle, makeScratch, type Scratch } from '../helpers/scratch.js';

const [K1, K2] = twoKernels();
// strace present and allowed to trace (ptrace may be forbidden in a container).
const haveStrace = spawnSync('strace', ['-f', '-qq', '-e', 'trace=execve', 'true']).status === 0;

describe.skipIf(!haveDkms)('status on a tree real dkms wrote', () => {
  let s: Scratch;
  const kb = (...a: string[]) => kbundle([...a, ...s.treeArgs, '--etcdir', s.etcDir]);
  const dkms = (...a: string[]) => {
    const r = realDkms(s, a);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return r.stdout;
  };
  const cacheDir = () => join(s.dkmsTree, '.kbundle-cache', 'conf');
  const cached = () => (existsSync(cacheDir()) ? readdirSync(cacheDir()).filter((n) => n.endsWith('.json')).sort() : []);
  /** Both tools' status, which must agree; returns the lines. */
  const agree = (...filter: string[]) => {
    const theirs = dkms('status', ...filter);
    const ours = kb('status', ...filter);
    expect(ours.code, ours.stderr).toBe(0);
    expect(ours.stdout).toBe(theirs);
    return ours.stdout;
  };

  beforeAll(() => {
    s = makeScratch([K1, K2]);
    addSource(s, 'bundles/hello-1.0');
    addSource(s, 'bundles/twomods-2.1');
    // A conf that runs a command: never remembered, sourced on every status.
    const dyn = addSource(s, 'bundles/hello-1.0', 'hellodyn-1.0');
    writeFileSync(
      join(dyn, 'dkms.conf'),
      readFileSync(join(dyn, 'dkms.conf'), 'utf8')
        .replace('PACKAGE_NAME="hello"', 'PACKAGE_NAME="hellodyn"')
        .replace('BUILT_MODULE_NAME[0]="hello"', 'BUILT_MODULE_NAME[0]="$(echo hello)"\nDEST_MODULE_NAME[0]="hellodyn"'),
    );
    for (const k of [K1, K2]) dkms('install', 'hello/1.0', '-k', k);
    dkms('install', 'twomods/2.1', '-k', K1);
    dkms('build', 'twomods/2.1', '-k', K2);
    dkms('install', 'hellodyn/1.0', '-k', K2);
  }, 600_000);

  it('prints what dkms prints, cold and warm, and remembers the static confs', () => {
    const cold = kb('status', '--verbose');
    const lines = agree();
    expect(cold.stdout).toBe(lines);
    expect(lines.trim().split('\n')).toEqual([
      `hello/1.0, ${K1}, x86_64: installed`,
      `hello/1.0, ${K2}, x86_64: installed`,
      `hellodyn/1.0, ${K2}, x86_64: installed`,
      `twomods/2.1, ${K1}, x86_64: installed`,
      `twomods/2.1, ${K2}, x86_64: built`,
    ]);
    // hello reads $kernel_source_dir (one entry per kernel); twomods reads nothing (one for both).
    expect(cached()).toHaveLength(3);
    for (const f of cached()) {
      const v = JSON.parse(readFileSync(join(cacheDir(), f), 'utf8'));
      expect(v.key).toBe(f.replace(/\.json$/, ''));
    }
    const warm = kb('status', '--verbose');
    expect(warm.stdout).toBe(lines);
    expect(warm.stderr).toContain('conf layouts: 3 remembered, 0 evaluated (static), 1 evaluated (dynamic)');
    expect(kb('status', '-k', K1).stdout).toBe(dkms('status', '-k', K1));
    expect(kb('status', 'twomods').stdout).toBe(dkms('status', 'twomods'));
  });

  it('--no-cache evaluates every conf and leaves the cache alone', () => {
    const before = cached();
    const r = kb('status', '--no-cache', '--verbose');
    expect(r.stdout).toBe(dkms('status'));
    expect(r.stderr).toContain('0 remembered, 3 evaluated (static), 1 evaluated (dynamic)');
    expect(cached()).toEqual(before);
  });

  it.skipIf(!haveStrace)('a warm run of static confs starts no bash; a dynamic conf is sourced every time', () => {
    kb('status');
    const trace = (mod: string) => {
      const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=execve', '-e', 'signal=none', process.execPath, BIN, 'status', mod, ...s.treeArgs, '--etcdir', s.etcDir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return { out: r.stdout, execs: r.stderr.split('\n').filter((l) => l.includes('execve(')) };
    };
    const stat = trace('hello');
    expect(stat.out).toBe(dkms('status', 'hello'));
    expect(stat.execs.filter((l) => /bash/.test(l))).toEqual([]);
    // The trace does see what kbundle runs: the dynamic conf's bash shows up.
    const dyn = trace('hellodyn');
    expect(dyn.out).toBe(dkms('status', 'hellodyn'));
    expect(dyn.execs.filter((l) => /bash/.test(l)).length).toBeGreaterThan(0);
  });

  it('reports a modified installed module as dkms does', () => {
    const f = join(s.installTree, K1, 'updates/dkms', readdirSync(join(s.installTree, K1, 'updates/dkms')).find((n) => n.startsWith('twomods_beta'))!);
    const orig = readFileSync(f);
    appendFileSync(f, 'x');
    try {
      const lines = agree();
      expect(lines).toContain(`twomods/2.1, ${K1}, x86_64: installed (WARNING! Diff between built and installed module!)\n`);
    } finally {
      writeFileSync(f, orig);
    }
    expect(agree()).not.toContain('WARNING');
  });

  it('finds a module where only dkms\'s second location (the conf\'s own) has it', () => {
    const from = join(s.installTree, K2, 'updates/dkms');
    const name = readdirSync(from).find((n) => n.startsWith('hello.ko'))!;
    mkdirSync(join(s.installTree, K2, 'extra'), { recursive: true });
    renameSync(join(from, name), join(s.installTree, K2, 'extra', name));
    try {
      const lines = agree();
      expect(lines).toContain(`hello/1.0, ${K2}, x86_64: installed\n`);
      // ... and where neither has it, both warn.
      renameSync(join(s.installTree, K2, 'extra', name), join(s.root, name));
      expect(agree()).toContain(`hello/1.0, ${K2}, x86_64: installed (WARNING! Diff between built and installed module!)\n`);
      renameSync(join(s.root, name), join(s.installTree, K2, 'extra', name));
    } finally {
      renameSync(join(s.installTree, K2, 'extra', name), join(from, name));
    }
  });

  it('follows a changed conf: the new content is a new key', () => {
    const conf = join(s.sourceTree, 'hello-1.0', 'dkms.conf');
    const orig = readFileSync(conf, 'utf8');
    const before = cached();
    // The built files no longer match the conf's module name: dkms no longer counts hello as built.
    writeFileSync(conf, orig.replace('BUILT_MODULE_NAME[0]="hello"', 'BUILT_MODULE_NAME[0]="hello_renamed"'));
    try {
      const lines = agree();
      expect(lines).toContain('hello/1.0: added\n');
      expect(lines).not.toContain('hello/1.0,');
      expect(cached().filter((f) => !before.includes(f))).toHaveLength(2);
    } finally {
      writeFileSync(conf, orig);
    }
    const r = kb('status', '--verbose');
    expect(r.stdout).toBe(dkms('status'));
    expect(r.stderr).toContain('0 evaluated (static)');
  });

  it('evaluates each conf once for all the entries that share it', () => {
    // A copy of hello's kernel dirs under more module names, as dkms lays them out.
    for (let i = 0; i < 3; i++) {
      const name = `hellocopy${i}`;
      const src = join(s.sourceTree, `${name}-1.0`);
      cpSync(join(s.sourceTree, 'hello-1.0'), src, { recursive: true });
      writeFileSync(join(src, 'dkms.conf'), readFileSync(join(src, 'dkms.conf'), 'utf8').replace('PACKAGE_NAME="hello"', `PACKAGE_NAME="${name}"`));
      mkdirSync(join(s.dkmsTree, name, '1.0'), { recursive: true });
      spawnSync('ln', ['-s', src, join(s.dkmsTree, name, '1.0', 'source')]);
      cpSync(join(s.dkmsTree, 'hello/1.0', K1), join(s.dkmsTree, name, '1.0', K1), { recursive: true });
    }
    const r = kb('status', '--verbose');
    expect(r.stdout).toBe(dkms('status'));
    expect(r.stdout).toContain(`hellocopy2/1.0, ${K1}, x86_64: built\n`);
    expect(r.stderr).toContain('3 evaluated (static)');
  });
});

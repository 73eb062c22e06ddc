// The yardstick's own checks: reading strace logs (threads vs children, the
// injected call), the subset of kill points, and snapshot differences.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { MUTATING_SYSCALLS, normaliseSite, parseTraceLog, planSubset, runKilled } from '../helpers/killpoints.js';
import { diffSnapshots, snapshotTree } from '../helpers/tree-snapshot.js';
import { helloSource, treesAt } from './scenario.js';

const LOG = [
  '100 execve("/usr/bin/node", ["node", "bin/kbundle"], 0x7ffc /* 3 vars */) = 0',
  '100 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, child_tid=0x1} <unfinished ...>',
  '101 mkdir("/r/a", 0777) = 0',
  '100 <... clone3 resumed> => {parent_tid=[101]}, 88) = 101',
  '101 rename("/r/a/.x.tmp-100-0a1b2c3d", "/r/a/x") = 0',
  '100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 200',
  '200 execve("/usr/sbin/depmod", ["depmod"], 0x1 /* 3 vars */) = 0',
  '200 renameat(3, "modules.dep.200.1.2", 3, "modules.dep") = 0',
  '200 renameat(3, "modules.alias.200.1.2", 3, "modules.alias" <unfinished ...>',
  '200 <... renameat resumed>) = ?',
  '200 +++ killed by SIGKILL +++',
  '101 rename("/r/a/.y.tmp-100-0a1b2c3d", "/r/a/y") = 0',
  '100 mkdir("/r/b", 0777) = 0',
].join('\n');

describe('kill-point harness', () => {
  test('a thread of node is kbundle, a forked process is a child; when=N hits every tracee at its own N-th call', () => {
    const l = parseTraceLog(LOG, { syscall: 'renameat', n: 2 });
    expect(l.topPid).toBe(100);
    expect(l.injections.map((i) => [i.pid, i.who, i.exe, i.nth])).toEqual([[200, 'child', 'depmod', 2]]);
    expect(l.killedPids).toEqual([200]);
    expect(l.maxCount).toEqual({ mkdir: { kbundle: 1, child: 0 }, rename: { kbundle: 2, child: 0 }, renameat: { kbundle: 0, child: 2 } });
    // rename#2 is the pool thread's second rename: kbundle itself.
    expect(parseTraceLog(LOG, { syscall: 'rename', n: 2 }).injections.map((i) => [i.pid, i.who])).toEqual([[101, 'kbundle']]);
    // mkdir#1 happens in two threads of kbundle (each counts its own).
    expect(parseTraceLog(LOG, { syscall: 'mkdir', n: 1 }).injections.map((i) => i.pid)).toEqual([101, 100]);
  });

  test('sites are stable across runs: root, pids and temp suffixes normalised', () => {
    expect(normaliseSite('rename("/tmp/k-1/root/a/.x.tmp-4242-0a1b2c3d", "/tmp/k-1/root/a/x") = ?', '/tmp/k-1/root')).toBe('rename("<root>/a/.x.tmp-*", "<root>/a/x") = ?');
    expect(normaliseSite('renameat(3, "modules.dep.5994.377330.1796103548", 3, "modules.dep") = ?', '/r/root')).toBe('renameat(3, "modules.dep.<n>.<n>.<n>", 3, "modules.dep") = ?');
    expect(normaliseSite('unlinkat(AT_FDCWD, "/tmp/k-1/tmp/tmp.ZOnsyGvMmP", 0) = ?', '/tmp/k-1/root')).toBe('unlinkat(AT_FDCWD, "<base>/tmp/tmp.*", 0) = ?');
    expect(normaliseSite('rename("/r/root/d/.src-0.partial-zfeyxi", "/r/root/d/src-0") = ?', '/r/root')).toBe('rename("<root>/d/.src-0.partial-*", "<root>/d/src-0") = ?');
    expect(normaliseSite('rename("/r/root/d/.kbundle-staging/501-9755e044/.src-0.partial-3HDMo7", "/r/root/d/x.kbundle-tmp-77-0a1b") = ?', '/r/root')).toBe(
      'rename("<root>/d/.kbundle-staging/<id>/.src-0.partial-*", "<root>/d/x.kbundle-tmp-*") = ?',
    );
    // Kernel releases and arches are not random.
    expect(normaliseSite('mkdir("/r/root/lib/modules/6.12.117+deb12-amd64/build-6.1.0-55-amd64-x86_64") = ?', '/r/root')).toBe('mkdir("<root>/lib/modules/6.12.117+deb12-amd64/build-6.1.0-55-amd64-x86_64") = ?');
  });

  test('the CI subset stays within the budget, covers every syscall with calls, and is deterministic', () => {
    const counts = { rename: { kbundle: 30, child: 0 }, fsync: { kbundle: 40, child: 0 }, renameat: { kbundle: 0, child: 9 }, symlink: { kbundle: 1, child: 0 } };
    const a = planSubset(counts, 24);
    expect(a).toEqual(planSubset(counts, 24));
    expect(a.length).toBeLessThanOrEqual(24 + MUTATING_SYSCALLS.length);
    expect(new Set(a.map((p) => p.syscall))).toEqual(new Set(['rename', 'fsync', 'renameat', 'symlink']));
    expect(planSubset(counts, 4).filter((p) => p.syscall === 'symlink')).toEqual([{ syscall: 'symlink', n: 1 }]);
    // A budget above the total is the full set of killing points.
    expect(planSubset(counts, 1000).length).toBe(80);
  });

  test('snapshots show leftovers, empty dirs, mode and content changes, symlink targets', () => {
    const root = mkdtempSync(join(tmpdir(), 'kbundle-snap-'));
    writeFileSync(join(root, 'f'), 'a');
    symlinkSync('x', join(root, 'l'));
    const s1 = snapshotTree(root);
    writeFileSync(join(root, 'f'), 'b');
    mkdirSync(join(root, 'empty'));
    writeFileSync(join(root, '.f.tmp-1-2'), '');
    rmSync(join(root, 'l'));
    symlinkSync('y', join(root, 'l'));
    const d = diffSnapshots(s1, snapshotTree(root));
    rmSync(root, { recursive: true, force: true });
    expect(d.map((l) => l.slice(0, 2) + l.slice(2).split('  ')[0])).toEqual(['+ .f.tmp-1-2', '+ empty', '~ f', '~ l']);
  });

  test('strace: kbundle add killed at its symlink (the source link), and a run past the last call is not killed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kbundle-kp-'));
    // A fresh tree per run: after a kill, the next add may first finish the interrupted one.
    const fresh = (name: string) => {
      const t = treesAt(join(dir, name));
      mkdirSync(t.dkmsTree, { recursive: true });
      helloSource(t, '1.0');
      return t;
    };
    const add = (t: ReturnType<typeof treesAt>, n: number) => runKilled(['add', 'hello/1.0', ...t.treeArgs], { syscall: 'symlink', n }, { logDir: dir, root: t.root });
    const k = add(fresh('a'), 1);
    const again = add(fresh('b'), 1);
    const past = add(fresh('c'), 1000);
    rmSync(dir, { recursive: true, force: true });
    expect([k.killed, k.signal]).toEqual(['kbundle', 'SIGKILL']);
    expect(k.site).toMatch(/^kbundle#1 symlink\("<root>\/usr\/src\/hello-1\.0", "<root>\/var\/lib\/dkms\/hello\//);
    expect(again.site).toBe(k.site);
    expect([past.killed, past.code]).toEqual(['none', 0]);
  });
});

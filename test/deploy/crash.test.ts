// kill -9 at many points of an install, then the next run must show the old
// state (byte for byte) or the new one (complete); and two installs at once.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { BIN, kbundle, sh } from '../helpers/scratch.js';
import { buildBundle, K612, snapshot, targetRoot, trust } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function leftovers(root: string): string[] {
  return sh('find', [root, '-path', '*/build/*', '-prune', '-o', '(', '-name', '*.tmp-*', '-o', '-name', '*.kbundle-tmp-*', '-o', '-name', '.tmp_*', '-o', '-name', '.kbundle-journal.json', '-o', '-name', '.kbundle-install.lock', '-o', '-name', '.kbundle-staging', ')', '-print']).stdout.trim().split('\n').filter(Boolean);
}

describe('crash safety', () => {
  test('killed at many points, the next status leaves the old or the new state, never a mix', async () => {
    const b = buildBundle([K612]);
    let sawForward = 0;
    let sawOld = 0;
    // Waits: negative = ms after spawn (before or while staging); >= 0 = ms after the journal appeared (mid-commit).
    const points = [-50, -250, -400, 0, 0, 1, 2, 4, 8, 15, 25, 40, 60, 90, 130, 200];
    for (const at of points) {
      const s = targetRoot(K612);
      const before = snapshot(s.root);
      const child = spawn(process.execPath, [BIN, 'bundle', 'install', b, '-k', K612, ...s.treeArgs, ...trust], { stdio: 'ignore' });
      const exited = new Promise((r) => child.on('exit', r));
      if (at < 0) await sleep(-at);
      else {
        const journal = join(s.dkmsTree, '.kbundle-journal.json');
        const t0 = Date.now();
        while (!existsSync(journal) && child.exitCode === null && Date.now() - t0 < 10_000) await new Promise((r) => setImmediate(r));
        if (at) await sleep(at);
      }
      child.kill('SIGKILL');
      await exited;
      const st = kbundle(['status', ...s.treeArgs]);
      expect(st.code, st.stderr).toBe(0);
      if (st.stdout === '') {
        sawOld++;
        expect(snapshot(s.root), `kill at ${at}`).toEqual(before);
      } else {
        expect(st.stdout, `kill at ${at}`).toBe(`hello/1.0, ${K612}, x86_64: installed\n`);
        if (st.stderr.includes('was interrupted')) sawForward++;
        const ko = join(s.installTree, K612, 'updates/dkms/hello.ko.xz');
        expect(sh('modinfo', ['-F', 'name', ko]).stdout.trim()).toBe('hello');
        expect(readFileSync(join(s.installTree, K612, 'modules.dep'), 'utf8')).toContain('updates/dkms/hello.ko.xz:');
        expect(existsSync(join(s.dkmsTree, '.kbundle-bundles/receipts/hello.json'))).toBe(true);
      }
      expect(leftovers(s.root), `kill at ${at}`).toEqual([]);
    }
    // Both branches must really have been exercised, or this test proves nothing.
    expect(sawOld).toBeGreaterThan(0);
    expect(sawForward).toBeGreaterThan(0);
  }, 300_000);

  test('two concurrent installs are serialized by the lock; a held lock times out with exit 45', async () => {
    const b = buildBundle([K612]);
    const s = targetRoot(K612);
    const run = () =>
      new Promise<{ code: number; out: string }>((resolve) => {
        const c = spawn(process.execPath, [BIN, 'bundle', 'install', b, '-k', K612, ...s.treeArgs, ...trust]);
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => (out += d));
        c.on('exit', (code) => resolve({ code: code ?? -1, out }));
      });
    const [x, y] = await Promise.all([run(), run()]);
    expect([x.code, y.code]).toEqual([0, 0]);
    // Exactly one did the work; the other found it done.
    expect([x.out, y.out].filter((o) => o.includes('already installed')).length).toBe(1);
    expect(kbundle(['status', ...s.treeArgs]).stdout).toBe(`hello/1.0, ${K612}, x86_64: installed\n`);
    expect(leftovers(s.root)).toEqual([]);

    // A live holder (this test process) keeps the lock: the installer waits, then gives up.
    const lock = join(s.dkmsTree, '.kbundle-install.lock');
    writeFileSync(lock, `${process.pid}\n`);
    const t = kbundle(['bundle', 'install', b, '-k', K612, ...s.treeArgs, ...trust, '--force', '--lock-timeout', '1']);
    expect(t.code).toBe(45);
    expect(t.stderr).toContain(`another kbundle command (pid ${process.pid}) holds ${lock}`);
    // A dead holder's lock is stale and taken over.
    writeFileSync(lock, '999999999\n');
    const u = kbundle(['bundle', 'install', b, '-k', K612, ...s.treeArgs, ...trust, '--force', '--lock-timeout', '1']);
    expect(u.code, u.stderr).toBe(0);
    expect(existsSync(lock)).toBe(false);
  }, 120_000);
});

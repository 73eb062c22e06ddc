// Ten kbundle processes on one DKMS tree at once: builds must not race in
// the shared <m>/<v> dirs (one build, no half-written module or scratch dir
// left), installs must not interleave their renames (one consistent
// install, no temp files or locks left).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { BIN, sh } from '../helpers/scratch.js';
import { diffSnapshots, snapshotTree } from '../helpers/tree-snapshot.js';
import { coreState, depmod, helloSource, kb, layout, treesAt } from './scenario.js';

const [K61, K612] = twoKernels();
const RUNS = 10;

function runAll(args: string[]): Promise<Array<{ code: number; out: string }>> {
  return Promise.all(
    Array.from(
      { length: RUNS },
      () =>
        new Promise<{ code: number; out: string }>((resolve) => {
          const c = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          c.stdout.on('data', (d) => (out += d));
          c.stderr.on('data', (d) => (out += d));
          c.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), out }));
        }),
    ),
  );
}

/** Anything a writer leaves when it loses a race or forgets to clean up. */
function leftovers(root: string): string[] {
  return [...snapshotTree(root).keys()].filter((p) => /(^|\/)build-[^/]+$|\.tmp-|^\.tmp_|\/\.tmp_|\.lock$|\.stale-|journal|\.kbundle-staging/.test(p));
}

describe('concurrent commands on one tree', () => {
  for (const k of [K61, K612]) {
    test(`${RUNS} x kbundle build hello/1.0 -k ${k} --no-cache: one build, nothing left over`, async () => {
      const base = mkdtempSync(join(tmpdir(), 'kbundle-conc-'));
      const t = treesAt(join(base, 'root'));
      layout(t, k);
      helloSource(t, '1.0');
      expect(kb(['add', 'hello/1.0', ...t.treeArgs]).code).toBe(0);
      const runs = await runAll(['build', 'hello/1.0', '-k', k, ...t.treeArgs, '--no-cache']);
      const failed = runs.filter((r) => r.code !== 0);
      const builders = runs.filter((r) => !/already built/.test(r.out)).length;
      const kad = join(t.dkmsTree, 'hello/1.0', k, 'x86_64');
      const modules = (() => {
        try {
          return readdirSync(join(kad, 'module')).filter((n) => /^hello\.ko/.test(n));
        } catch {
          return [];
        }
      })();
      let makeLog = '';
      try {
        makeLog = readFileSync(join(kad, 'log/make.log'), 'utf8');
      } catch {
        // reported below
      }
      const builds = (makeLog.match(/^Building module\(s\)$/gm) ?? []).length;
      const headers = (makeLog.match(/^DKMS make\.log for /gm) ?? []).length;
      const left = leftovers(t.root);
      console.log(`[concurrency] build ${k}: ${RUNS - failed.length}/${RUNS} exit 0, ${builders} ran make, make.log shows ${builds} build(s), leftovers ${left.length}`);
      rmSync(base, { recursive: true, force: true });
      expect(failed.map((r) => `exit ${r.code}: ${r.out.trim().split('\n').slice(-3).join(' / ')}`)).toEqual([]);
      expect(modules.length).toBe(1);
      expect({ builds, headers }).toEqual({ builds: 1, headers: 1 });
      expect(builders).toBe(1);
      expect(left).toEqual([]);
    });

    test(`${RUNS} x kbundle install hello/1.0 -k ${k}: installed once, the tree a single install gives`, async () => {
      const base = mkdtempSync(join(tmpdir(), 'kbundle-conc-'));
      const t = treesAt(join(base, 'root'));
      const golden = join(base, 'golden');
      layout(t, k);
      depmod(t, k);
      coreState(t, k, '1.0', false);
      const restore = () => {
        rmSync(t.root, { recursive: true, force: true });
        expect(sh('cp', ['-a', golden, t.root]).code).toBe(0);
      };
      expect(sh('cp', ['-a', t.root, golden]).code).toBe(0);
      // The reference: one install, same path.
      expect(kb(['install', 'hello/1.0', '-k', k, ...t.treeArgs]).code).toBe(0);
      const after = snapshotTree(t.root);
      const status = kb(['status', ...t.treeArgs]).stdout;
      expect(status).toBe(`hello/1.0, ${k}, x86_64: installed\n`);
      restore();
      const runs = await runAll(['install', 'hello/1.0', '-k', k, ...t.treeArgs]);
      const failed = runs.filter((r) => r.code !== 0);
      const d = diffSnapshots(after, snapshotTree(t.root));
      const st = kb(['status', ...t.treeArgs]).stdout;
      console.log(`[concurrency] install ${k}: ${RUNS - failed.length}/${RUNS} exit 0, status ${JSON.stringify(st)}, ${d.length} differences from a single install`);
      rmSync(base, { recursive: true, force: true });
      expect(failed.map((r) => `exit ${r.code}: ${r.out.trim().split('\n').slice(-3).join(' / ')}`)).toEqual([]);
      expect(st).toBe(status);
      expect(d).toEqual([]);
    });
  }
});

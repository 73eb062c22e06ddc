// kill -9 at every mutating syscall of `kbundle install hello/1.1` while
// hello/1.0 is installed (1.1 added and built): 1.0 is uninstalled and 1.1
// installed in one command, so "before" is 1.0 installed and "after" 1.1.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { KILL_TEST_TIMEOUT, coreState, depmod, failures, layout, placeOriginal, runKillScenario, type Trees } from './scenario.js';

const [K61, K612] = twoKernels();

describe('kill points: upgrade', () => {
  for (const [k, original] of [
    [K61, false],
    [K612, false],
    [K612, true],
  ] as const) {
    test.concurrent(`install hello/1.1 over hello/1.0 on ${k}${original ? ', with an in-tree hello archived' : ''}`, async ({ expect }) => {
      let placed = '';
      let placedBytes = Buffer.alloc(0);
      const r = await runKillScenario({
        label: `upgrade ${k}${original ? ' original' : ''}`,
        prepare(t: Trees) {
          layout(t, k);
          if (original) {
            placed = placeOriginal(t, k);
            placedBytes = readFileSync(placed);
          }
          depmod(t, k);
          coreState(t, k, '1.0', true);
          coreState(t, k, '1.1', false);
        },
        command: (t) => ['install', 'hello/1.1', '-k', k, ...t.treeArgs],
        status: (t) => ['status', ...t.treeArgs],
        recover: (t) => ['bundle', 'recover', '-k', k, ...t.treeArgs],
        checkAfter(t) {
          // Still the distribution's bytes in the archive, not 1.0's module.
          if (original) expect(readFileSync(join(t.dkmsTree, 'hello/original_module', k, 'x86_64', placed.split('/').pop()!)).equals(placedBytes)).toBe(true);
        },
      });
      expect(failures(r)).toEqual([]);
    }, KILL_TEST_TIMEOUT);
  }
});

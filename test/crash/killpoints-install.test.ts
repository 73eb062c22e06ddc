// kill -9 at every mutating syscall of `kbundle install` (from "added and
// built"), then recovery by status / bundle recover / the same command: the
// tree must be exactly the clean before or after, never in between.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { KILL_TEST_TIMEOUT, coreState, depmod, failures, layout, placeOriginal, runKillScenario, type Trees } from './scenario.js';

const [K61, K612] = twoKernels();

describe('kill points: install', () => {
  for (const [k, original] of [
    [K61, false],
    [K612, false],
    [K612, true],
  ] as const) {
    test.concurrent(`install hello/1.0 on ${k}${original ? ', replacing an in-tree hello' : ''}`, async ({ expect }) => {
      let placed = '';
      let placedBytes = Buffer.alloc(0);
      const r = await runKillScenario({
        label: `install ${k}${original ? ' original' : ''}`,
        prepare(t: Trees) {
          layout(t, k);
          if (original) {
            placed = placeOriginal(t, k);
            placedBytes = readFileSync(placed);
          }
          depmod(t, k);
          coreState(t, k, '1.0', false);
        },
        command: (t) => ['install', 'hello/1.0', '-k', k, ...t.treeArgs],
        status: (t) => ['status', ...t.treeArgs],
        recover: (t) => ['bundle', 'recover', '-k', k, ...t.treeArgs],
        checkAfter(t) {
          // The distribution's module is archived, byte for byte.
          if (original) expect(readFileSync(join(t.dkmsTree, 'hello/original_module', k, 'x86_64', placed.split('/').pop()!)).equals(placedBytes)).toBe(true);
        },
      });
      expect(failures(r)).toEqual([]);
    }, KILL_TEST_TIMEOUT);
  }
});

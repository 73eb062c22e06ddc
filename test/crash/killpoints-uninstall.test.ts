// kill -9 at every mutating syscall of `kbundle uninstall` (from installed).
import { readFileSync } from 'node:fs';
import { describe, test } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { KILL_TEST_TIMEOUT, coreState, depmod, failures, layout, placeOriginal, runKillScenario, type Trees } from './scenario.js';

const [K61, K612] = twoKernels();

describe('kill points: uninstall', () => {
  for (const [k, original] of [
    [K61, false],
    [K612, false],
    [K612, true],
  ] as const) {
    test.concurrent(`uninstall hello/1.0 on ${k}${original ? ', restoring an in-tree hello' : ''}`, async ({ expect }) => {
      let placed = '';
      let placedBytes = Buffer.alloc(0);
      const r = await runKillScenario({
        label: `uninstall ${k}${original ? ' original' : ''}`,
        prepare(t: Trees) {
          layout(t, k);
          if (original) {
            placed = placeOriginal(t, k);
            placedBytes = readFileSync(placed);
          }
          depmod(t, k);
          coreState(t, k, '1.0', true);
        },
        command: (t) => ['uninstall', 'hello/1.0', '-k', k, ...t.treeArgs],
        status: (t) => ['status', ...t.treeArgs],
        recover: (t) => ['bundle', 'recover', '-k', k, ...t.treeArgs],
        checkAfter() {
          // The distribution's module is back where it was, byte for byte.
          if (original) expect(readFileSync(placed).equals(placedBytes)).toBe(true);
        },
      });
      expect(failures(r)).toEqual([]);
    }, KILL_TEST_TIMEOUT);
  }
});

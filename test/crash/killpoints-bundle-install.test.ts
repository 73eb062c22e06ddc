// kill -9 at every mutating syscall of `kbundle bundle install` into a fresh
// root, and of an upgrade from a hello 1.0 bundle to a 1.1 bundle.
import { afterAll, describe, test } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { buildBundle, trust } from '../deploy/helpers.js';
import { KILL_TEST_TIMEOUT, depmod, failures, helloSourceDir, kb, layout, removeHelloSources, runKillScenario, type Trees } from './scenario.js';

const [K61, K612] = twoKernels();

describe('kill points: bundle install', () => {
  afterAll(removeHelloSources);

  for (const [k, upgrade] of [
    [K61, false],
    [K612, false],
    [K612, true],
  ] as const) {
    test.concurrent(`bundle install hello ${upgrade ? '1.1 over 1.0' : '1.0'} on ${k}`, async ({ expect }) => {
      const b10 = buildBundle([K61, K612]);
      const b11 = upgrade ? buildBundle([K61, K612], { source: helloSourceDir('1.1'), epoch: 1700000500, name: 'hello-1.1' }) : '';
      const r = await runKillScenario({
        label: `bundle-install ${k}${upgrade ? ' upgrade' : ''}`,
        prepare(t: Trees) {
          layout(t, k, { intree: true });
          depmod(t, k);
          if (upgrade) {
            const r = kb(['bundle', 'install', b10, '-k', k, '--root', t.root, ...trust]);
            if (r.code !== 0) throw new Error(`installing the 1.0 bundle: ${r.stderr}`);
          }
        },
        command: (t) => ['bundle', 'install', upgrade ? b11 : b10, '-k', k, '--root', t.root, ...trust],
        status: (t) => ['status', ...t.treeArgs],
        recover: (t) => ['bundle', 'recover', '-k', k, '--root', t.root],
      });
      expect(failures(r)).toEqual([]);
    }, KILL_TEST_TIMEOUT);
  }
});

// kill -9 at every mutating syscall of `kbundle install hello/1.1` over an installed 1.0.
import { coreState, describeCoreKillPoints } from './scenario.js';

describeCoreKillPoints({
  op: 'upgrade',
  title: (k) => `install hello/1.1 over hello/1.0 on ${k}`,
  originalWords: 'with an in-tree hello archived',
  state: (t, k) => {
    coreState(t, k, '1.0', true);
    coreState(t, k, '1.1', false);
  },
  command: (t, k) => ['install', 'hello/1.1', '-k', k, ...t.treeArgs],
  original: 'archived',
  originalNote: "still the distribution's bytes in the archive, not 1.0's module",
});

// kill -9 at every mutating syscall of `kbundle install` (from added and built).
import { coreState, describeCoreKillPoints } from './scenario.js';

describeCoreKillPoints({
  op: 'install',
  title: (k) => `install hello/1.0 on ${k}`,
  originalWords: 'replacing an in-tree hello',
  state: (t, k) => coreState(t, k, '1.0', false),
  command: (t, k) => ['install', 'hello/1.0', '-k', k, ...t.treeArgs],
  original: 'archived',
  originalNote: "the distribution's module is archived, byte for byte",
});

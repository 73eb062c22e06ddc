// kill -9 at every mutating syscall of `kbundle remove --all` (from installed).
import { coreState, describeCoreKillPoints } from './scenario.js';

describeCoreKillPoints({
  op: 'remove',
  title: (k) => `remove hello/1.0 --all on ${k}`,
  originalWords: 'restoring an in-tree hello',
  state: (t, k) => coreState(t, k, '1.0', true),
  command: (t) => ['remove', 'hello/1.0', '--all', ...t.treeArgs],
  original: 'restored',
  originalNote: "the distribution's module is back where it was, byte for byte",
});

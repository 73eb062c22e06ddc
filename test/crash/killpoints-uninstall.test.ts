// kill -9 at every mutating syscall of `kbundle uninstall` (from installed).
import { coreState, describeCoreKillPoints } from './scenario.js';

describeCoreKillPoints({
  op: 'uninstall',
  title: (k) => `uninstall hello/1.0 on ${k}`,
  originalWords: 'restoring an in-tree hello',
  state: (t, k) => coreState(t, k, '1.0', true),
  command: (t, k) => ['uninstall', 'hello/1.0', '-k', k, ...t.treeArgs],
  original: 'restored',
  originalNote: "the distribution's module is back where it was, byte for byte",
});

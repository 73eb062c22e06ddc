/**
 * What `kbundle dropin install` puts in place, as data: which of Debian's dkms
 * files are diverted (dpkg-divert(1) --rename keeps the original under a new
 * name and makes dpkg put any future version of it there too) and what script
 * takes each one's place. Pure: no file is read or written here.
 *
 * Two files are replaced. /usr/sbin/dkms is the engine every caller reaches
 * (the *-dkms maintainer scripts, the kernel hooks in /etc/kernel/*.d, the
 * dkms_autoinstaller init script and dkms.service, dkms-autopkgtest).
 * /usr/lib/dkms/common.postinst is what every *-dkms package's postinst runs;
 * kbundle's version does the same steps in one process and builds the kernels
 * concurrently. Everything else of Debian's dkms package stays as Debian ships
 * it (docs/dkms-dropin.md says why).
 */
import { join } from 'node:path';

export interface Diversion {
  /** The path callers use, e.g. /usr/sbin/dkms. */
  path: string;
  /** Where dpkg-divert moves Debian's file (and future versions of it). */
  divertTo: string;
  /** The kbundle script written at `path`. */
  script: string;
}

export interface DropinPlan {
  root: string;
  diversions: Diversion[];
}

/** The marker line that tells kbundle's scripts from anything else at those paths. */
export const DROPIN_MARK = '# kbundle drop-in for dkms';

const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * node: the Node.js binary to run (absolute; maintainer scripts run with a
 * minimal PATH). entry: kbundle's bin/kbundle-dkms, which runs kbundle under
 * the name dkms (so `dkms --version` answers as dkms does).
 */
export function planDropin(root: string, node: string, entry: string): DropinPlan {
  const run = (args: string) => `exec ${shQuote(node)} ${shQuote(entry)} ${args}"$@"\n`;
  const header = (what: string, distrib: string) =>
    `#!/bin/sh\n${DROPIN_MARK}, installed by \`kbundle dropin install\`.\n` +
    `# ${what}\n# Debian's file is kept as ${distrib}; \`kbundle dropin uninstall\` puts it back.\n`;
  const diversions: Diversion[] = [
    {
      path: '/usr/sbin/dkms',
      divertTo: '/usr/sbin/dkms.distrib',
      script: header('Runs kbundle with dkms\'s command line, exit codes and output.', '/usr/sbin/dkms.distrib') + run(''),
    },
    {
      path: '/usr/lib/dkms/common.postinst',
      divertTo: '/usr/lib/dkms/common.postinst.distrib',
      script:
        header('The steps of Debian\'s common.postinst (remove old, add, build, install per kernel), in one kbundle process.', '/usr/lib/dkms/common.postinst.distrib') +
        run('common-postinst '),
    },
  ];
  return { root, diversions };
}

/** A path of the plan inside its root. */
export const rooted = (plan: DropinPlan, p: string): string => join(plan.root, p);

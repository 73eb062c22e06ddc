/** dropin install|uninstall|status: make kbundle the system's dkms (docs/dkms-dropin.md). */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { diversionState, installDropin, uninstallDropin, type DiversionState } from '../../dropin/apply.js';
import { planDropin } from '../../dropin/plan.js';
import type { CommonOptions } from '../options.js';

type Runner = (fn: (positional: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;
interface DropinOptions { root?: string; node?: string; json?: boolean }

/** bin/kbundle-dkms of this installation of kbundle. */
const ENTRY = fileURLToPath(new URL('../../../bin/kbundle-dkms', import.meta.url));

function plan(o: DropinOptions) {
  return planDropin(resolve(o.root ?? '/'), resolve(o.node ?? process.execPath), ENTRY);
}

function report(states: DiversionState[], o: DropinOptions, say: (l: string) => void): number {
  if (o.json) process.stdout.write(`${JSON.stringify({ diversions: states }, null, 2)}\n`);
  else for (const s of states) say(`${s.path}: ${s.diverted ? `diverted to ${s.divertTo}` : 'not diverted'}, ${s.script === 'kbundle' ? "kbundle's script" : s.script === 'other' ? "Debian's file" : s.script}`);
  return 0;
}

export function registerDropin(program: Command, run: Runner): void {
  const group = program.command('dropin').description("make kbundle the system's dkms (dpkg-divert of /usr/sbin/dkms and common.postinst), or undo it");
  const common = (c: Command) =>
    c
      .option('--root <dir>', 'the system to change (default /); dpkg-divert --root')
      .option('--node <path>', 'the Node.js binary the scripts run (default: this one)')
      .option('--json', 'print the resulting state as JSON');
  const quietSay = (o: DropinOptions) => (l: string) => {
    if (!o.json) process.stdout.write(`${l}\n`);
  };
  common(group.command('install').description("divert Debian's /usr/sbin/dkms and /usr/lib/dkms/common.postinst to *.distrib and put kbundle's in their place")).action(
    run(async (_p, o) => report(await installDropin(plan(o as DropinOptions), quietSay(o as DropinOptions)), o as DropinOptions, () => {})),
  );
  common(group.command('uninstall').description("remove kbundle's scripts and give the paths back to Debian's dkms")).action(
    run(async (_p, o) => report(await uninstallDropin(plan(o as DropinOptions), quietSay(o as DropinOptions)), o as DropinOptions, () => {})),
  );
  common(group.command('status').description('show whether each path is diverted and whose file it holds')).action(
    run(async (_p, o) => {
      const p = plan(o as DropinOptions);
      return report(await Promise.all(p.diversions.map((d) => diversionState(p, d))), o as DropinOptions, quietSay(o as DropinOptions));
    }),
  );
}

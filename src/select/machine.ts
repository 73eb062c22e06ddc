/** The ELF-machine reason of one candidate, pure (src/arch has the table). */
import { archInfo, elfMachineName } from '../arch/arch.js';
import type { Candidate, Reason } from './types.js';

export function machineReason(c: Candidate, targetArch: string): Reason | null {
  if (c.machine === undefined) return null;
  const want = archInfo(targetArch);
  if (!want || want.elfMachine === c.machine) return null;
  return { kind: 'machine', module: c.module, candidate: elfMachineName(c.machine), target: `${targetArch}, ${want.elfName}` };
}

/** Whether an ELF machine belongs to an arch: the one check the writer and the installer share. */
import { archInfo, elfMachineName } from './arch.js';

/** null when `machine` is the arch's (or either is unknown), else why not. */
export function machineMismatch(arch: string, machine: number | undefined): string | null {
  if (machine === undefined) return null;
  const a = archInfo(arch);
  if (!a || a.elfMachine === machine) return null;
  return `is an ELF ${elfMachineName(machine)} binary (e_machine ${machine}); arch ${arch} needs ${a.elfName} (e_machine ${a.elfMachine})`;
}

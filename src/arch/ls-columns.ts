/** `bundle ls`'s per-target ELF machine and vermagic columns. */
import type { TargetConfig } from '../bundle/model/oci.js';
import { elfMachineName } from './arch.js';

export function binaryColumns(t: Pick<TargetConfig, 'vermagic' | 'modules'>): { elf: string; machines: number[]; vermagic: string } {
  const machines = [...new Set(t.modules.flatMap((m) => (m.machine === undefined ? [] : [m.machine])))].sort((a, b) => a - b);
  // Bundles written before the machine was recorded show '-'.
  return { elf: machines.length ? machines.map(elfMachineName).join(',') : '-', machines, vermagic: t.vermagic };
}

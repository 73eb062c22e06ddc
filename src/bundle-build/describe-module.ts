/** What a bundle records about one built, signed .ko (for the installer's selection). */
import { depends, srcversion, vermagic } from '../elf/modinfo.js';
import { formatCrc, readVersions } from '../elf/versions.js';
import { readModule } from '../kmod/compression.js';
import { elfMachineOf } from '../arch/elf-machine.js';

export interface ModuleFacts {
  vermagic: string;
  srcversion?: string;
  depends: string[];
  versions: [string, string][];
  /** ELF e_machine. */
  machine?: number;
}

export async function describeModule(path: string): Promise<ModuleFacts> {
  const elf = await readModule(path);
  const vm = vermagic(elf);
  if (!vm) throw new Error(`${path} has no vermagic in .modinfo`);
  return {
    vermagic: vm,
    srcversion: srcversion(elf) ?? undefined,
    depends: depends(elf),
    versions: readVersions(elf).map((v) => [v.symbol, formatCrc(v.crc)] as [string, string]),
    machine: elfMachineOf(elf) ?? undefined,
  };
}

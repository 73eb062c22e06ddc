/**
 * Candidates from the two places they come from: a bundle's target config
 * (what the installer has) and a real module file (what the builder and the
 * tests have). Both are pure given their inputs.
 */
import type { TargetConfig } from '../bundle/model/oci.js';
import { depends, moduleName, readModinfo, vermagic } from '../elf/modinfo.js';
import { readVersions } from '../elf/versions.js';
import { KbundleError } from '../util/errors.js';
import type { Candidate } from './types.js';
import { vermagicRelease } from './vermagic.js';
import { elfMachineOf } from '../arch/elf-machine.js';

/** From the uncompressed ELF of a module. `module` defaults to its name= field. */
export function candidateFromElf(elf: Buffer, meta: { id: string; arch: string; module?: string; symversDigest?: string }): Candidate {
  const info = readModinfo(elf);
  const vm = vermagic(info);
  if (!vm) throw new KbundleError(`module ${meta.module ?? meta.id} has no vermagic`);
  const module = meta.module ?? moduleName(info);
  if (!module) throw new KbundleError(`module ${meta.id} has no name= and none was given`);
  return {
    id: meta.id,
    module,
    kernel: vermagicRelease(vm),
    arch: meta.arch,
    vermagic: vm,
    versions: readVersions(elf),
    depends: depends(info),
    ...(elfMachineOf(elf) !== null ? { machine: elfMachineOf(elf)! } : {}),
    ...(meta.symversDigest ? { symversDigest: meta.symversDigest } : {}),
  };
}

/** From a bundle's per-(kernel, arch) target config; modules without recorded versions have none to check. */
export function candidatesFromTargetConfig(config: TargetConfig): Candidate[] {
  return config.modules.map((m) => ({
    id: m.digest,
    module: m.name,
    kernel: config.kernelRelease,
    arch: config.arch,
    vermagic: config.vermagic,
    versions: (m.versions ?? []).map(([symbol, crc]) => {
      if (!/^0x[0-9a-fA-F]{1,8}$/.test(crc)) throw new KbundleError(`module ${m.name}: bad CRC ${JSON.stringify(crc)} for ${symbol} in the bundle`);
      return { symbol, crc: parseInt(crc.slice(2), 16) };
    }),
    depends: m.depends ?? [],
    ...(m.machine !== undefined ? { machine: m.machine } : {}),
    ...(config.symversDigest ? { symversDigest: config.symversDigest } : {}),
  }));
}

/**
 * Types for choosing, per module package, which prebuilt binaries of a bundle
 * fit a target kernel (docs/formats/kabi.md, "Compatibility levels"; docs/selection.md). Everything a Selection
 * holds is plain JSON (no Map/Set/bigint) so `--json` can print it as is.
 */
import type { SymversEntry } from '../elf/symvers.js';

export interface VersionEntry {
  symbol: string;
  /** 32-bit CRC from `__versions`. */
  crc: number;
  /**
   * Build-time owner from the build's Module.symvers (`vmlinux` or a module
   * path), when the bundle records it (`versions: [[sym, crc, owner]]`, docs/bundle-format.md).
   */
  owner?: string;
}

/** One built module binary of a bundle. */
export interface Candidate {
  /** Stable identity, e.g. the blob digest. */
  id: string;
  /** Module name (as in `name=` / the file name without .ko). */
  module: string;
  /** Kernel release the binary was built against. */
  kernel: string;
  /** `uname -m` arch of that build. */
  arch: string;
  /** Full vermagic, trailing space included. */
  vermagic: string;
  /** `__versions`: one CRC per imported symbol. Empty for builds without modversions. */
  versions: VersionEntry[];
  /** `depends=` from .modinfo. */
  depends: string[];
  /** `sha256:` digest of the build-time Module.symvers. */
  symversDigest?: string;
  /** ELF e_machine, when the bundle records it. */
  machine?: number;
}

/** The binaries of one (kernel, arch) build of a package: installed together or not at all. */
export interface BuildGroup {
  kernel: string;
  arch: string;
  modules: Candidate[];
}

/** The target facts selection reads; TargetFacts from src/target satisfies it. */
export interface SelectionTarget {
  kernel: string;
  arch: string;
  vermagic: string | null;
  symvers: Map<string, Pick<SymversEntry, 'crc' | 'module'>> | null;
  symversDigest?: string | null;
  installedModules: Set<string>;
  builtinModules?: Set<string>;
  headersPresent: boolean;
  compilerPresent: boolean;
}

export interface SelectOptions {
  /** The bundle carries the package's source (a source manifest). */
  sourceAvailable: boolean;
  /** Module names the package consists of; default: every module named by any candidate. */
  modules?: string[];
  /** Modules installed alongside from other packages in the same run (satisfy depends/owners). */
  alsoProvided?: string[];
  /** Per group, how many symbol problems to list (default 10). */
  maxSymbols?: number;
  /** How many rejected groups to report when nothing fits (default 3). */
  nearest?: number;
}

export type Level = 'exact' | 'compatible' | 'source' | 'none';

/** Why a build group is not exact / not compatible. CRCs are `0x%08x` strings for reading and JSON. */
export type Reason =
  | { kind: 'release'; candidate: string; target: string }
  | { kind: 'arch'; candidate: string; target: string }
  | { kind: 'machine'; module: string; candidate: string; target: string }
  | { kind: 'vermagic'; module: string; candidate: string; target: string; onlyCandidate: string[]; onlyTarget: string[] }
  | { kind: 'target-vermagic-unknown' }
  | { kind: 'target-symvers-unknown' }
  | { kind: 'symvers-digest'; candidate: string; target: string }
  | { kind: 'no-modversions'; module: string }
  | { kind: 'crc'; module: string; symbol: string; candidateCrc: string; targetCrc: string }
  | { kind: 'missing-symbol'; module: string; symbol: string; candidateCrc: string }
  | { kind: 'owner-missing'; module: string; symbol: string; owner: string }
  | { kind: 'depends-missing'; module: string; dependency: string }
  | { kind: 'incomplete'; missing: string[] };

export interface GroupEvaluation {
  kernel: string;
  arch: string;
  /** Candidate ids by module name. */
  modules: Array<{ module: string; id: string }>;
  /** Best level this group reaches on the target, or null. */
  level: 'exact' | 'compatible' | null;
  /** Why it is not exact (empty when exact). */
  notExact: Reason[];
  /** Why it is not compatible (empty when compatible); symbol reasons capped at maxSymbols per kind. */
  notCompatible: Reason[];
  /** Totals before capping, for ranking and for "… and N more". */
  crcMismatches: number;
  missingSymbols: number;
  /** Facts that do not block loading but an installer should report (e.g. a dependency exact builds expect). */
  warnings: Reason[];
}

export interface Selection {
  level: Level;
  target: { kernel: string; arch: string; vermagic: string | null; headersPresent: boolean; compilerPresent: boolean };
  /** The group to install for exact/compatible; null otherwise. */
  chosen: GroupEvaluation | null;
  /** For level 'source': true. For 'none': why a source build is impossible. */
  source: { possible: boolean; missing: Array<'source' | 'headers' | 'compiler'> };
  /** exact/compatible: every group that fits, best first. none/source: the nearest rejected groups. */
  considered: GroupEvaluation[];
}

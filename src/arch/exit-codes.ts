/** Exit codes of cross-arch builds and `kbundle headers` (range 80–89, docs/exit-codes.md). */
export const ArchExit = {
  /** A kernel's headers are for an arch the manifest does not list, or a listed arch has no kernel. */
  ArchMismatch: 80,
  /** The cross compiler or binutils for an arch are not installed. */
  NoToolchain: 81,
  /** An arch kbundle cannot map to a kbuild ARCH / ELF machine / Debian arch. */
  UnknownArch: 82,
  /** `headers fetch`: apt could not find or download a package. */
  FetchFailed: 83,
  /** `headers fetch`: the unpacked tree is not a usable kernel build directory. */
  BadHeaders: 84,
} as const;

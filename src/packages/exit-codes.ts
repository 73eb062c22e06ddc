/**
 * Exit codes of the package builders (mkdeb, mkdsc, mkbmdeb, mkrpm, mkkmp,
 * mkdriverdisk). Range 60-69, reserved for them; docs/exit-codes.md lists
 * them in their own section, keep the two in sync.
 */
export const PackagesExit = {
  /** A tool the format needs (dpkg-deb, rpmbuild, createrepo_c, xorriso, ...) is not installed. */
  MissingTool: 60,
  /** The module/version is not in the DKMS tree, or has no source. */
  UnknownModule: 61,
  /** A requested kernel has no build of the module (DKMS tree) or no binary in the bundle. */
  NotBuilt: 62,
  /** A format tool (dpkg-buildpackage, dpkg-source, rpmbuild, createrepo_c, xorriso, tar) failed. */
  ToolFailed: 63,
  /** An output exists already (use --force), or the output path is unusable. */
  OutputExists: 64,
  /** Bad option values (unknown --distro, --format, names that cannot become package names). */
  BadOption: 65,
} as const;

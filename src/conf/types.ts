/**
 * Types for dkms.conf as DKMS reads it: first the raw whitelisted variables
 * that come back from bash, then the per-kernel evaluation the build uses.
 */

/** Whitelisted variables after bash sourcing: NAME -> sparse array (index -> value). */
export type RawConf = Map<string, Map<number, string>>;

/** Everything bash sees while sourcing a dkms.conf (DKMS's visible variables). */
export interface ConfContext {
  /** Path of the dkms.conf to source. */
  confPath: string;
  kernelver: string;
  arch: string;
  /** Headers dir; DKMS default <installTree>/<kernelver>/build. */
  kernelSourceDir: string;
  dkmsTree: string;
  sourceTree: string;
  installTree: string;
  /** Module name / version when known (DKMS's $module / $module_version). */
  module?: string;
  moduleVersion?: string;
  /** Kernel config file; default <ksrc>/include/config/auto.conf, else <ksrc>/.config. */
  kernelConfig?: string;
  /** Directory of /etc/dkms-style override files (<m>.conf, <m>-<v>.conf, ...); unset = none. */
  overridesDir?: string;
  /** --directive NAME=value, applied last. */
  directives?: string[];
  parallelJobs: number;
}

export interface ModuleSpec {
  builtName: string;
  /** Relative to the build dir, always ends in '/' ('' for top). */
  builtLocation: string;
  destName: string;
  /** As written in the conf, before any distro override (e.g. '/kernel/extra'). */
  destLocation: string;
  strip: boolean;
}

/** A dkms.conf evaluated for one kernel/arch. */
export interface EvaluatedConf {
  name: string;
  version: string;
  autoinstall: boolean;
  /** Selected MAKE/MAKE_MATCH command, before -j/KERNELRELEASE injection; default filled in. */
  make: string;
  /** CLEAN, default filled in. */
  clean: string;
  preBuild: string | null;
  postBuild: string | null;
  postAdd: string | null;
  preInstall: string | null;
  postInstall: string | null;
  postRemove: string | null;
  /** PATCH[] entries that apply to this kernel, in order (file names under patches/). */
  patches: string[];
  modules: ModuleSpec[];
  buildDepends: string[];
  excluded: boolean;
  /** Human-readable reasons, e.g. 'BUILD_EXCLUSIVE_KERNEL "^5\\." does not match 6.1.0-56-amd64'. */
  excludeReasons: string[];
  obsoleteBy: string | null;
  remakeInitrd: boolean;
  modulesConf: string[];
  noWeakModules: boolean;
  /** Deprecation and consistency warnings to print (DKMS read_conf_strict). */
  warnings: string[];
  raw: RawConf;
}

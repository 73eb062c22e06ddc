/**
 * Pure evaluation of a sourced dkms.conf for one kernel/arch: DKMS read_conf's
 * post-processing (defaults, validation, MAKE/PATCH selection,
 * BUILD_EXCLUSIVE_*), with the deliberate differences listed in
 * docs/dkms-conf.md.
 */
import type { RegexResults } from './records.js';
import { CONF_LIMITS } from './limits.js';
import { oracleFrom, type RegexOracle } from './regex.js';
import type { ConfContext, EvaluatedConf, ModuleSpec, RawConf } from './types.js';
import { compareVer } from './version.js';
import { DEPRECATED_CONF_VARIABLES } from './whitelist.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

export { destLocationForDistro, distroName, parseOsRelease, readOsRelease, type OsRelease } from './os-release.js';

const get = (raw: RawConf, name: string, i = 0): string => raw.get(name)?.get(i) ?? '';
/** bash ${#A[@]}: number of set elements, not max index + 1. */
const count = (raw: RawConf, name: string): number => raw.get(name)?.size ?? 0;
const indices = (raw: RawConf, name: string): number[] => [...(raw.get(name)?.keys() ?? [])].sort((a, b) => a - b);
const valuesInOrder = (raw: RawConf, name: string): string[] => indices(raw, name).map((i) => get(raw, name, i));

const MODULE_ARRAYS = ['BUILT_MODULE_NAME', 'BUILT_MODULE_LOCATION', 'DEST_MODULE_NAME', 'DEST_MODULE_LOCATION'];

function modules(raw: RawConf, name: string, errors: string[]): ModuleSpec[] {
  // Sparse arrays are allowed: the record count is the highest index + 1. Only
  // the set indices are visited; a gap is reported as a range, so the cost
  // follows what the conf set, not how large an index it wrote.
  const set = [...new Set(MODULE_ARRAYS.flatMap((a) => indices(raw, a)))].sort((a, b) => a - b);
  if (set.length === 0) {
    // Debian 3.0.10 refuses a conf without modules (3.4.3 only warns).
    errors.push("No 'DEST_MODULE_LOCATION' directive specified.");
    return [];
  }
  // read-raw refuses these with file:line; this guards a RawConf built elsewhere.
  const bad = set.filter((i) => !Number.isSafeInteger(i) || i < 0 || i > CONF_LIMITS.maxIndex);
  if (bad.length) {
    errors.push(`Module array index ${bad[0]} is outside 0-${CONF_LIMITS.maxIndex}, the range kbundle accepts.`);
    return [];
  }
  const num = set.at(-1)! + 1;
  const out: ModuleSpec[] = [];
  let strip0 = true;
  let next = 0;
  for (const i of set) {
    if (i > next) {
      const records = i - 1 === next ? `record #${next}` : `records #${next} to #${i - 1}`;
      errors.push(`No 'BUILT_MODULE_NAME' directive specified for ${records}.`);
      errors.push(`No 'DEST_MODULE_LOCATION' directive specified for ${records}.`);
    }
    next = i + 1;
    let builtName = get(raw, 'BUILT_MODULE_NAME', i);
    if (!builtName && num === 1) builtName = name;
    let builtLocation = get(raw, 'BUILT_MODULE_LOCATION', i);
    if (builtLocation && !builtLocation.endsWith('/')) builtLocation += '/';
    const destName = get(raw, 'DEST_MODULE_NAME', i) || builtName;
    const destLocation = get(raw, 'DEST_MODULE_LOCATION', i);

    const s = get(raw, 'STRIP', i);
    let strip: boolean;
    if (/^[nN]/.test(s)) strip = false;
    else if (/^[yY]/.test(s)) strip = true;
    // Empty inherits STRIP[0]; for record 0 that is the conf's own lowercase strip[0].
    else if (s === '') strip = i === 0 ? get(raw, 'strip', 0) !== 'no' : strip0;
    // Any other word leaves DKMS's strip[i] untouched, and only "no" disables stripping.
    else strip = get(raw, 'strip', i) !== 'no';
    if (i === 0) strip0 = strip;

    if (!builtName) errors.push(`No 'BUILT_MODULE_NAME' directive specified for record #${i}.`);
    if (/\.(o|ko)$/.test(builtName)) errors.push(`'BUILT_MODULE_NAME' directive ends in '.o' or '.ko' in record #${i}.`);
    if (/\.(o|ko)$/.test(destName)) errors.push(`'DEST_MODULE_NAME' directive ends in '.o' or '.ko' in record #${i}.`);
    if (!destLocation) errors.push(`No 'DEST_MODULE_LOCATION' directive specified for record #${i}.`);
    else if (!/^\/(kernel|updates|extra)/.test(destLocation)) {
      errors.push(`Directive 'DEST_MODULE_LOCATION' does not begin with '/kernel', '/updates', or '/extra' in record #${i}.`);
    }
    out.push({ builtName, builtLocation, destName, destLocation, strip });
  }
  return out;
}

function duplicateWarnings(mods: ModuleSpec[]): string[] {
  const w: string[] = [];
  const seenBuilt = new Set<string>();
  const seenDest = new Set<string>();
  mods.forEach((m, i) => {
    const b = `${m.builtLocation}${m.builtName}`;
    if (seenBuilt.has(b)) w.push(`dkms.conf: duplicate module '${b}' in 'BUILT_MODULE_NAME[${i}]' (DKMS 3.1.7+ rejects this).`);
    if (seenDest.has(m.destName)) w.push(`dkms.conf: duplicate module '${m.destName}' in 'DEST_MODULE_NAME[${i}]' (DKMS 3.1.7+ rejects this).`);
    seenBuilt.add(b);
    seenDest.add(m.destName);
  });
  return w;
}

function selectMake(raw: RawConf, kernelver: string, re: RegexOracle, warnings: string[]): string {
  let make = get(raw, 'MAKE_MATCH', 0) ? '' : get(raw, 'MAKE', 0);
  // DKMS loops to ${#MAKE[@]}, so with a sparse MAKE array high indices are never looked at.
  for (let i = 0; i < count(raw, 'MAKE'); i++) {
    const cmd = get(raw, 'MAKE', i);
    const pat = get(raw, 'MAKE_MATCH', i);
    if (!cmd || !pat) continue;
    const v = re(pat, kernelver);
    if (v === 'invalid') warnings.push(`MAKE_MATCH[${i}] "${pat}" is not a valid regular expression; treated as no match.`);
    if (v === 'match') make = cmd;
  }
  return make;
}

function selectPatches(raw: RawConf, kernelver: string, re: RegexOracle, warnings: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < count(raw, 'PATCH'); i++) {
    const p = get(raw, 'PATCH', i);
    const pat = get(raw, 'PATCH_MATCH', i);
    if (!p) continue;
    if (pat) {
      const v = re(pat, kernelver);
      if (v === 'invalid') warnings.push(`PATCH_MATCH[${i}] "${pat}" is not a valid regular expression; patch ${p} skipped.`);
      if (v !== 'match') continue;
    }
    out.push(p);
  }
  for (const p of out) {
    if (p.split('/').includes('..')) {
      throw new KbundleError(`Patch ${p} as specified in dkms.conf contains '..' path component.`, ExitCode.AllNotAllowed);
    }
  }
  return out;
}

function exclusions(
  raw: RawConf,
  ctx: ConfContext,
  kernelConfig: Map<string, string> | null,
  re: RegexOracle,
  warnings: string[],
): string[] {
  const reasons: string[] = [];
  const k = ctx.kernelver;
  const bx = get(raw, 'build_exclude');
  if (bx) reasons.push(`build_exclude is set to "${bx}" by the conf`);

  const kernelRe = get(raw, 'BUILD_EXCLUSIVE_KERNEL');
  if (kernelRe) {
    const v = re(kernelRe, k);
    if (v === 'nomatch') reasons.push(`BUILD_EXCLUSIVE_KERNEL "${kernelRe}" does not match ${k}`);
    // bash's `! k =~ bad` is true, so DKMS excludes on a broken regex too.
    if (v === 'invalid') reasons.push(`BUILD_EXCLUSIVE_KERNEL "${kernelRe}" is not a valid regular expression`);
  }
  const min = get(raw, 'BUILD_EXCLUSIVE_KERNEL_MIN');
  if (min && compareVer(k, min) < 0) reasons.push(`BUILD_EXCLUSIVE_KERNEL_MIN "${min}": ${k} is older`);
  const max = get(raw, 'BUILD_EXCLUSIVE_KERNEL_MAX');
  if (max && compareVer(k, max) > 0) reasons.push(`BUILD_EXCLUSIVE_KERNEL_MAX "${max}": ${k} is newer`);

  const archRe = get(raw, 'BUILD_EXCLUSIVE_ARCH');
  if (archRe) {
    const v = re(archRe, ctx.arch);
    if (v === 'nomatch') reasons.push(`BUILD_EXCLUSIVE_ARCH "${archRe}" does not match ${ctx.arch}`);
    if (v === 'invalid') reasons.push(`BUILD_EXCLUSIVE_ARCH "${archRe}" is not a valid regular expression`);
  }

  const cfg = get(raw, 'BUILD_EXCLUSIVE_CONFIG');
  if (cfg && !kernelConfig) {
    warnings.push(`BUILD_EXCLUSIVE_CONFIG "${cfg}" not checked: no kernel config for ${k} (DKMS skips it too).`);
  } else if (cfg && kernelConfig) {
    const on = (name: string) => /^[ym]/.test(kernelConfig.get(name) ?? '');
    for (const word of cfg.split(/[ \t\n]+/).filter(Boolean)) {
      if (word.startsWith('!')) {
        const name = word.slice(1);
        if (on(name)) reasons.push(`BUILD_EXCLUSIVE_CONFIG "${word}": ${name}=${kernelConfig.get(name)} in ${k}`);
      } else if (!on(word)) {
        reasons.push(`BUILD_EXCLUSIVE_CONFIG "${word}": ${word} is not y or m in ${k}`);
      }
    }
  }

  for (const n of ['BUILD_EXCLUSIVE_KERNEL', 'BUILD_EXCLUSIVE_KERNEL_MIN', 'BUILD_EXCLUSIVE_KERNEL_MAX', 'BUILD_EXCLUSIVE_ARCH', 'BUILD_EXCLUSIVE_CONFIG']) {
    for (const i of indices(raw, n).filter((i) => i > 0)) {
      warnings.push(`${n}[${i}] (per-module exclusion, DKMS 3.2.2+) is not supported and is ignored.`);
    }
  }
  return reasons;
}

/** DKMS 3.1.7+ strictness: "", yes or no (any case); anything else is a conf error. */
function yesNo(raw: RawConf, name: string, errors: string[]): boolean {
  const v = get(raw, name);
  if (/^yes$/i.test(v)) return true;
  if (v === '' || /^no$/i.test(v)) return false;
  errors.push(`Unsupported ${name} value '${v}'.`);
  return false;
}

const orNull = (s: string): string | null => (s === '' ? null : s);

export function evaluateConf(
  raw: RawConf,
  ctx: ConfContext,
  kernelConfig: Map<string, string> | null,
  regexResults?: RegexResults,
): EvaluatedConf {
  const re = oracleFrom(regexResults);
  const errors: string[] = [];
  const warnings: string[] = [];

  const name = get(raw, 'PACKAGE_NAME');
  const version = get(raw, 'PACKAGE_VERSION');
  if (!name) errors.push("No 'PACKAGE_NAME' directive specified.");
  if (!version) errors.push("No 'PACKAGE_VERSION' directive specified.");

  const mods = modules(raw, name, errors);
  const autoinstall = yesNo(raw, 'AUTOINSTALL', errors);
  const noWeakModules = yesNo(raw, 'NO_WEAK_MODULES', errors);
  yesNo(raw, 'BUILD_DEPENDS_REBUILD', errors);
  if (errors.length) {
    throw new KbundleError(errors.map((e) => `${ctx.confPath}: ${e}`).join('\n'), ExitCode.BadConf);
  }

  for (const v of DEPRECATED_CONF_VARIABLES) {
    if (count(raw, v) > 0) warnings.push(`Deprecated feature: ${v} (${ctx.confPath})`);
  }
  warnings.push(...duplicateWarnings(mods));

  const buildDir = `${ctx.dkmsTree}/${ctx.module || name}/${ctx.moduleVersion || version}/build`;
  const make = selectMake(raw, ctx.kernelver, re, warnings) || `make -C ${ctx.kernelSourceDir} M=${buildDir}`;
  const clean = get(raw, 'CLEAN') || `make -C ${ctx.kernelSourceDir} M=${buildDir} clean`;
  const patches = selectPatches(raw, ctx.kernelver, re, warnings);
  const excludeReasons = exclusions(raw, ctx, kernelConfig, re, warnings);

  return {
    name,
    version,
    autoinstall,
    make,
    clean,
    preBuild: orNull(get(raw, 'PRE_BUILD')),
    postBuild: orNull(get(raw, 'POST_BUILD')),
    postAdd: orNull(get(raw, 'POST_ADD')),
    preInstall: orNull(get(raw, 'PRE_INSTALL')),
    postInstall: orNull(get(raw, 'POST_INSTALL')),
    postRemove: orNull(get(raw, 'POST_REMOVE')),
    patches,
    modules: mods,
    buildDepends: valuesInOrder(raw, 'BUILD_DEPENDS').filter(Boolean),
    excluded: excludeReasons.length > 0,
    excludeReasons,
    obsoleteBy: orNull(get(raw, 'OBSOLETE_BY')),
    remakeInitrd: /^[yY]/.test(get(raw, 'REMAKE_INITRD')),
    modulesConf: valuesInOrder(raw, 'MODULES_CONF').filter(Boolean),
    noWeakModules,
    warnings,
    raw,
  };
}

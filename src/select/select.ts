/**
 * Pure selection: which prebuilt build of a package fits a target kernel
 * (docs/formats/kabi.md, "Compatibility levels"; docs/selection.md). No file system access here; the facts come
 * from src/target and the candidates from the bundle, so the decision can be
 * tested, replayed and printed (`--json`) without touching a machine.
 */
import { formatCrc } from '../elf/versions.js';
import { compareKernelRelease } from './kernel-order.js';
import type { BuildGroup, Candidate, GroupEvaluation, Reason, SelectOptions, Selection, SelectionTarget } from './types.js';
import { flagDiff, hasModversions, vermagicTail } from './vermagic.js';
import { machineReason } from './machine.js';

const DEFAULT_MAX_SYMBOLS = 10;
const DEFAULT_NEAREST = 3;

/** The kernel treats '-' and '_' in module names alike. */
const norm = (name: string) => name.replace(/-/g, '_');

/** 'drivers/usb/core/usbcore' (a symvers module column) → 'usbcore'. */
const ownerName = (owner: string) => norm(owner.slice(owner.lastIndexOf('/') + 1).replace(/\.ko$/, ''));

/**
 * One group per (kernel, arch): a bundle has one binary manifest per pair and
 * its modules were built together, so mixing binaries across builds could
 * pair modules whose shared symbols have different CRCs.
 */
export function groupCandidates(candidates: Candidate[]): BuildGroup[] {
  const groups = new Map<string, BuildGroup>();
  for (const c of [...candidates].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const key = `${c.kernel}\0${c.arch}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { kernel: c.kernel, arch: c.arch, modules: [] }));
    // Two binaries for one module in one build is a malformed bundle; the lowest id wins so the result is stable.
    if (!g.modules.some((m) => norm(m.module) === norm(c.module))) g.modules.push(c);
  }
  return [...groups.values()];
}

export interface EvaluationContext {
  required: string[];
  alsoProvided: Set<string>;
  maxSymbols: number;
}

const sameTail = (c: Candidate, target: SelectionTarget) => target.vermagic !== null && vermagicTail(c.vermagic) === vermagicTail(target.vermagic);

function vermagicReason(c: Candidate, target: string): Reason {
  return { kind: 'vermagic', module: c.module, candidate: c.vermagic, target, ...flagDiff(c.vermagic, target) };
}

/** Where a group stands on the target: the exact and the compatible checks, each with its reasons. */
export function evaluateGroup(group: BuildGroup, target: SelectionTarget, ctx: EvaluationContext): GroupEvaluation {
  const members = new Set(group.modules.map((m) => norm(m.module)));
  const provided = (name: string) =>
    members.has(name) || target.installedModules.has(name) || (target.builtinModules?.has(name) ?? false) || ctx.alsoProvided.has(name);

  const shared: Reason[] = [];
  const missing = ctx.required.filter((r) => !members.has(r));
  if (missing.length) shared.push({ kind: 'incomplete', missing });
  if (group.arch !== target.arch) shared.push({ kind: 'arch', candidate: group.arch, target: target.arch });
  // The ELF machine is checked on its own, not inferred from the group's arch
  // label: the kernel's elf_check_arch() refuses any other e_machine ("Invalid
  // module format", kernel/module/main.c), whatever the bundle says.
  for (const m of group.modules) {
    const wrong = machineReason(m, target.arch);
    if (wrong) shared.push(wrong);
  }
  if (target.vermagic === null) shared.push({ kind: 'target-vermagic-unknown' });

  // Exact: built for this very kernel (docs/formats/kabi.md, "Compatibility levels"). Dependencies do not decide it,
  // but an installer should still hear about missing ones (warnings).
  // A target whose vermagic cannot be read (headers installed, no in-tree
  // module yet: image builds, header-only hosts) still identifies its build
  // by Module.symvers: the same release built against byte-identical symvers
  // is the same kernel build, vermagic included.
  const sameBuildBySymvers =
    target.vermagic === null && Boolean(target.symversDigest) && group.modules.every((m) => m.symversDigest === target.symversDigest);
  const notExact: Reason[] = sameBuildBySymvers ? shared.filter((r) => r.kind !== 'target-vermagic-unknown') : [...shared];
  if (group.kernel !== target.kernel) notExact.push({ kind: 'release', candidate: group.kernel, target: target.kernel });
  for (const m of group.modules) {
    if (target.vermagic !== null && m.vermagic !== target.vermagic) notExact.push(vermagicReason(m, target.vermagic));
    if (m.symversDigest && target.symversDigest && m.symversDigest !== target.symversDigest) {
      notExact.push({ kind: 'symvers-digest', candidate: m.symversDigest, target: target.symversDigest });
    }
  }

  // Compatible: what the kernel itself checks at load time (same_magic
  // without the release word, check_version per import, module_layout being
  // one of those imports), plus what depmod -E would not catch: module-owned
  // symbols and depends= need the owning module on the target (docs/formats/kabi.md: depmod -E caveat).
  const notCompatible: Reason[] = [...shared];
  const symbolReasons: Reason[] = [];
  const dependReasons: Reason[] = [];
  let crcMismatches = 0;
  let missingSymbols = 0;
  if (target.symvers === null) notCompatible.push({ kind: 'target-symvers-unknown' });
  for (const m of group.modules) {
    if (target.vermagic !== null && !sameTail(m, target)) notCompatible.push(vermagicReason(m, target.vermagic));
    if (m.versions.length === 0 || !hasModversions(m.vermagic)) notCompatible.push({ kind: 'no-modversions', module: m.module });
    const dependsOnMember = m.depends.some((d) => members.has(norm(d)));
    if (target.symvers !== null) {
      for (const v of m.versions) {
        // Symbols exported by a module of the same build resolve against that
        // module at load time, whose CRC came from the same build.
        if (v.owner !== undefined && v.owner !== 'vmlinux' && members.has(ownerName(v.owner))) continue;
        const row = target.symvers.get(v.symbol);
        if (!row) {
          if (v.owner === undefined && dependsOnMember) continue;
          missingSymbols++;
          symbolReasons.push({ kind: 'missing-symbol', module: m.module, symbol: v.symbol, candidateCrc: formatCrc(v.crc) });
          continue;
        }
        if (row.crc !== v.crc) {
          crcMismatches++;
          symbolReasons.push({ kind: 'crc', module: m.module, symbol: v.symbol, candidateCrc: formatCrc(v.crc), targetCrc: formatCrc(row.crc) });
        }
        if (row.module !== 'vmlinux' && !provided(ownerName(row.module))) {
          symbolReasons.push({ kind: 'owner-missing', module: m.module, symbol: v.symbol, owner: ownerName(row.module) });
        }
      }
    }
    for (const d of m.depends) {
      if (!provided(norm(d))) dependReasons.push({ kind: 'depends-missing', module: m.module, dependency: norm(d) });
    }
  }
  // module_layout first: its mismatch alone says struct module differs, which explains everything after it.
  symbolReasons.sort((a, b) => Number(isLayout(b)) - Number(isLayout(a)));
  notCompatible.push(...dependReasons, ...symbolReasons.slice(0, ctx.maxSymbols));

  const exact = notExact.length === 0;
  const compatible = notCompatible.length === 0;
  return {
    kernel: group.kernel,
    arch: group.arch,
    modules: group.modules.map((m) => ({ module: m.module, id: m.id })),
    level: exact ? 'exact' : compatible ? 'compatible' : null,
    notExact,
    notCompatible,
    crcMismatches,
    missingSymbols,
    warnings: exact ? dependReasons : [],
  };
}

const isLayout = (r: Reason) => 'symbol' in r && r.symbol === 'module_layout';

const groupId = (e: GroupEvaluation) => e.modules.map((m) => m.id).sort()[0] ?? '';

/** Deterministic tie-breaks: this kernel's own build, then the newest kernel, then the lowest id. */
function tieBreak(target: SelectionTarget) {
  return (a: GroupEvaluation, b: GroupEvaluation): number =>
    Number(b.kernel === target.kernel) - Number(a.kernel === target.kernel) ||
    compareKernelRelease(b.kernel, a.kernel) ||
    (groupId(a) < groupId(b) ? -1 : groupId(a) > groupId(b) ? 1 : 0);
}

const LEVEL_RANK = { exact: 0, compatible: 1 } as const;

function tailMatches(e: GroupEvaluation): boolean {
  return !e.notCompatible.some((r) => r.kind === 'vermagic' || r.kind === 'target-vermagic-unknown');
}

/** Nearest misses first: same arch, then matching vermagic tail, then fewest symbol problems (the report of a failed source-build fallback). */
function nearness(target: SelectionTarget) {
  const tb = tieBreak(target);
  return (a: GroupEvaluation, b: GroupEvaluation): number =>
    Number(b.arch === target.arch) - Number(a.arch === target.arch) ||
    Number(tailMatches(b)) - Number(tailMatches(a)) ||
    a.crcMismatches + a.missingSymbols - (b.crcMismatches + b.missingSymbols) ||
    tb(a, b);
}

/** Selection over already-grouped builds. */
export function selectGroup(groups: BuildGroup[], target: SelectionTarget, opts: SelectOptions): Selection {
  const required = [...new Set((opts.modules ?? groups.flatMap((g) => g.modules.map((m) => m.module))).map(norm))].sort();
  const ctx: EvaluationContext = {
    required,
    alsoProvided: new Set((opts.alsoProvided ?? []).map(norm)),
    maxSymbols: opts.maxSymbols ?? DEFAULT_MAX_SYMBOLS,
  };
  const evaluated = groups.map((g) => evaluateGroup(g, target, ctx));
  const targetSummary = {
    kernel: target.kernel,
    arch: target.arch,
    vermagic: target.vermagic,
    headersPresent: target.headersPresent,
    compilerPresent: target.compilerPresent,
  };
  const missing: Array<'source' | 'headers' | 'compiler'> = [];
  if (!opts.sourceAvailable) missing.push('source');
  if (!target.headersPresent) missing.push('headers');
  if (!target.compilerPresent) missing.push('compiler');
  const source = { possible: missing.length === 0, missing };

  const tb = tieBreak(target);
  const fitting = evaluated
    .filter((e) => e.level !== null)
    .sort((a, b) => LEVEL_RANK[a.level!] - LEVEL_RANK[b.level!] || tb(a, b));
  if (fitting.length) {
    const chosen = fitting[0]!;
    return { level: chosen.level!, target: targetSummary, chosen, source, considered: fitting };
  }
  const nearest = [...evaluated].sort(nearness(target)).slice(0, opts.nearest ?? DEFAULT_NEAREST);
  return { level: source.possible ? 'source' : 'none', target: targetSummary, chosen: null, source, considered: nearest };
}

/**
 * Chooses, for one package, the build to install on `target`: exact, else
 * compatible, else a source build when possible, else none with the nearest
 * misses explained. All-or-nothing per build: every module of the package
 * must come from the same (kernel, arch) build.
 */
export function selectBinary(candidates: Candidate[], target: SelectionTarget, opts: SelectOptions): Selection {
  return selectGroup(groupCandidates(candidates), target, opts);
}

/** Human-readable lines for a Selection (the non-JSON output of the installer). */
import type { GroupEvaluation, Reason, Selection } from './types.js';

const q = (s: string) => JSON.stringify(s);

export function formatReason(r: Reason): string {
  switch (r.kind) {
    case 'release':
      return `built for kernel ${r.candidate}, target is ${r.target}`;
    case 'arch':
      return `built for arch ${r.candidate}, target is ${r.target}`;
    case 'machine':
      return `${r.module}: ELF machine ${r.candidate}, the target kernel (${r.target}) loads only its own machine's modules`;
    case 'vermagic': {
      const diff = [
        r.onlyCandidate.length ? `only in module: ${r.onlyCandidate.join(' ')}` : '',
        r.onlyTarget.length ? `only in kernel: ${r.onlyTarget.join(' ')}` : '',
      ].filter(Boolean);
      return `${r.module}: vermagic ${q(r.candidate)} vs kernel ${q(r.target)}${diff.length ? ` (${diff.join('; ')})` : ''}`;
    }
    case 'target-vermagic-unknown':
      return 'target vermagic unknown: no readable in-tree module for that kernel';
    case 'target-symvers-unknown':
      return 'target symbol CRCs unknown: no symvers file or Module.symvers for that kernel';
    case 'symvers-digest':
      return `built against Module.symvers ${r.candidate}, target has ${r.target}`;
    case 'no-modversions':
      return `${r.module}: built without modversions, so it only loads on the exact kernel it was built for`;
    case 'crc':
      return `${r.module}: symbol ${r.symbol} CRC ${r.candidateCrc} (module) != ${r.targetCrc} (kernel)`;
    case 'missing-symbol':
      return `${r.module}: symbol ${r.symbol} (CRC ${r.candidateCrc}) is not exported by the target kernel`;
    case 'owner-missing':
      return `${r.module}: symbol ${r.symbol} comes from module ${r.owner}, which the target does not have`;
    case 'depends-missing':
      return `${r.module}: depends on module ${r.dependency}, which the target does not have`;
    case 'incomplete':
      return `build lacks module(s) ${r.missing.join(', ')}`;
  }
}

function groupLabel(e: GroupEvaluation): string {
  return `${e.kernel}/${e.arch} [${e.modules.map((m) => `${m.module}=${m.id}`).join(', ')}]`;
}

function symbolTail(e: GroupEvaluation): string[] {
  const shown = e.notCompatible.filter((r) => r.kind === 'crc' || r.kind === 'missing-symbol').length;
  const total = e.crcMismatches + e.missingSymbols;
  return total > shown ? [`    … ${total - shown} more symbol(s): ${e.crcMismatches} CRC mismatch(es), ${e.missingSymbols} missing in total`] : [];
}

export function explain(s: Selection): string[] {
  const t = s.target;
  const lines = [`target: ${t.kernel} ${t.arch}, vermagic ${t.vermagic === null ? 'unknown' : q(t.vermagic)}`];
  if (s.chosen) {
    const c = s.chosen;
    if (s.level === 'exact') lines.push(`exact: ${groupLabel(c)} was built for this kernel`);
    else lines.push(`compatible: ${groupLabel(c)} was built for ${c.kernel}; vermagic flags and every imported symbol CRC match the target`);
    for (const w of c.warnings) lines.push(`  warning: ${formatReason(w)}`);
    return lines;
  }
  if (s.level === 'source') lines.push('no prebuilt binary fits; building from source against the target headers');
  else {
    const why = s.source.missing.map((m) => (m === 'source' ? 'the bundle has no source' : m === 'headers' ? 'no kernel headers' : 'no compiler'));
    lines.push(`no prebuilt binary fits and building from source is impossible (${why.join(', ')})`);
  }
  if (s.considered.length === 0) lines.push('  the bundle has no binaries for this package');
  for (const e of s.considered) {
    lines.push(`  nearest: ${groupLabel(e)}`);
    for (const r of e.notCompatible) lines.push(`    ${formatReason(r)}`);
    lines.push(...symbolTail(e));
    if (!e.notCompatible.some((r) => r.kind === 'release')) {
      const rel = e.notExact.find((r) => r.kind === 'release');
      if (rel) lines.push(`    ${formatReason(rel)}`);
    }
  }
  return lines;
}

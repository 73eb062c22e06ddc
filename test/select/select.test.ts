import { beforeAll, describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { formatCrc } from '../../src/elf/versions.js';
import { readTargetFacts, type TargetFacts } from '../../src/target/facts.js';
import { selectBinary, groupCandidates } from '../../src/select/select.js';
import { explain } from '../../src/select/explain.js';
import { candidatesFromTargetConfig } from '../../src/select/candidate.js';
import { compareKernelRelease } from '../../src/select/kernel-order.js';
import type { Candidate, Reason, Selection } from '../../src/select/types.js';
import type { TargetConfig } from '../../src/bundle/model/oci.js';
import { buildPackage, kernelWithModules, makeTargetTree, otherSeriesKernel, setSymversCrc, type BuiltPackage } from './fixtures.js';

const ARCH = 'x86_64';
const A = kernelWithModules();
const B = otherSeriesKernel(A);
/** Another release name with A's exact flags and CRCs: what a kABI-stable update looks like. */
const COMPAT = 'kbsel.99.0-1-compat';

let pa: BuiltPackage; // built against A
let pb: BuiltPackage; // built against B (other series)
let targetA: TargetFacts;

beforeAll(async () => {
  [pa, pb, targetA] = await Promise.all([buildPackage(A), buildPackage(B), readTargetFacts({ kernel: A, arch: ARCH })]);
});

const pkg = (p: BuiltPackage) => [p.a, p.b];
const compatFacts = (opts: Parameters<typeof makeTargetTree>[2] = {}) =>
  readTargetFacts({ kernel: COMPAT, arch: ARCH, root: makeTargetTree(A, COMPAT, opts).root });
const reasonsOf = <K extends Reason['kind']>(rs: Reason[], kind: K) => rs.filter((r): r is Extract<Reason, { kind: K }> => r.kind === kind);

describe('real modules against real kernel facts', () => {
  test('the candidates carry the real metadata kbuild wrote', () => {
    expect(pa.a.kernel).toBe(A);
    expect(pa.a.vermagic).toBe(targetA.vermagic);
    expect(pa.a.depends).toEqual(['usbcore']);
    expect(pa.b.depends).toEqual(['kbsel_a']);
    expect(pa.a.versions.map((v) => v.symbol)).toEqual(expect.arrayContaining(['_printk', 'usb_register_driver']));
    expect(pa.b.versions.map((v) => v.symbol)).toContain('kbsel_hello');
  });

  test('same kernel → exact', () => {
    const s = selectBinary([...pkg(pb), ...pkg(pa)], targetA, { sourceAvailable: true });
    expect(s.level).toBe('exact');
    expect(s.chosen?.kernel).toBe(A);
    expect(s.chosen?.modules.map((m) => m.id).sort()).toEqual([pa.a.id, pa.b.id]);
    expect(s.chosen?.warnings).toEqual([]);
    expect(explain(s)[1]).toMatch(/^exact: /);
  });

  test('other release, same flags and CRCs → compatible (module-to-module import resolved within the build)', async () => {
    const t = await compatFacts();
    expect(t.vermagic).toBe(targetA.vermagic); // the copied in-tree module
    expect(t.installedModules.has('usb_common')).toBe(true);
    const s = selectBinary([...pkg(pa), ...pkg(pb)], t, { sourceAvailable: false });
    expect(s.level).toBe('compatible');
    expect(s.chosen?.kernel).toBe(A);
    expect(reasonsOf(s.chosen!.notExact, 'release')).toEqual([{ kind: 'release', candidate: A, target: COMPAT }]);
    expect(explain(s).join('\n')).toContain(`compatible: ${A}/${ARCH}`);
  });

  test('one CRC changed on the target → not compatible, naming the symbol and both CRCs', async () => {
    const orig = pa.a.versions.find((v) => v.symbol === 'usb_register_driver')!.crc;
    const changed = (orig ^ 0x5a5a5a5a) >>> 0;
    const t = await compatFacts({ editSymvers: (s) => setSymversCrc(s, 'usb_register_driver', changed) });
    const s = selectBinary(pkg(pa), t, { sourceAvailable: false });
    expect(s.level).toBe('none');
    const g = s.considered[0]!;
    expect(g.crcMismatches).toBe(1);
    expect(reasonsOf(g.notCompatible, 'crc')).toEqual([
      { kind: 'crc', module: 'kbsel_a', symbol: 'usb_register_driver', candidateCrc: formatCrc(orig), targetCrc: formatCrc(changed) },
    ]);
    const text = explain(s).join('\n');
    expect(text).toContain(`usb_register_driver CRC ${formatCrc(orig)} (module) != ${formatCrc(changed)} (kernel)`);
    expect(text).toContain('bundle has no source');
  });

  test(`module built for the other series → none, with release and CRC reasons`, () => {
    const s = selectBinary(pkg(pb), targetA, { sourceAvailable: false, maxSymbols: 3 });
    expect(s.level).toBe('none');
    const g = s.considered[0]!;
    expect(reasonsOf(g.notExact, 'release')).toEqual([{ kind: 'release', candidate: B, target: A }]);
    const crcs = reasonsOf(g.notCompatible, 'crc');
    expect(crcs.length).toBe(3); // capped
    expect(g.crcMismatches).toBeGreaterThan(3);
    for (const r of crcs) {
      const real = targetA.symvers!.get(r.symbol)!.crc;
      expect(r.targetCrc).toBe(formatCrc(real));
      expect(r.candidateCrc).not.toBe(r.targetCrc);
    }
    // Debian 6.1 modules import module_layout (struct module's CRC); its mismatch is listed first.
    expect(pb.a.versions.some((v) => v.symbol === 'module_layout')).toBe(B.startsWith('6.1.'));
    if (B.startsWith('6.1.')) expect(crcs[0]!.symbol).toBe('module_layout');
    const text = explain(s);
    expect(text.some((l) => l.includes(`built for kernel ${B}, target is ${A}`))).toBe(true);
    expect(text.some((l) => /… \d+ more symbol/.test(l))).toBe(true);
  });

  test('nothing fits but headers, compiler and source are there → source', () => {
    expect(targetA.headersPresent && targetA.compilerPresent).toBe(true);
    const s = selectBinary(pkg(pb), targetA, { sourceAvailable: true });
    expect(s.level).toBe('source');
    expect(s.source).toEqual({ possible: true, missing: [] });
    expect(s.considered[0]?.kernel).toBe(B);
  });

  test('no headers on the target → none, saying so', async () => {
    const t = await compatFacts({ headers: false, editSymvers: (x) => setSymversCrc(x, '_printk', 1) });
    expect(t.headersPresent).toBe(false);
    const s = selectBinary(pkg(pa), t, { sourceAvailable: true });
    expect(s.level).toBe('none');
    expect(s.source.missing).toContain('headers');
  });

  test('depends= module missing on the target → not compatible, naming it', async () => {
    const t = await compatFacts({ withUsbcore: false });
    expect(t.installedModules.has('usbcore')).toBe(false);
    const s = selectBinary(pkg(pa), t, { sourceAvailable: false });
    expect(s.level).toBe('none');
    const g = s.considered[0]!;
    expect(reasonsOf(g.notCompatible, 'depends-missing')).toEqual([{ kind: 'depends-missing', module: 'kbsel_a', dependency: 'usbcore' }]);
    expect(reasonsOf(g.notCompatible, 'owner-missing').map((r) => r.symbol)).toContain('usb_register_driver');
    expect(g.crcMismatches).toBe(0);
    // Another package installed in the same run may provide it.
    expect(selectBinary(pkg(pa), t, { sourceAvailable: false, alsoProvided: ['usbcore'] }).level).toBe('compatible');
  });

  test('all-or-nothing per build: an incomplete matching build is not mixed with another build', async () => {
    const t = await compatFacts();
    const s = selectBinary([pa.a, ...pkg(pb)], t, { sourceAvailable: false, modules: ['kbsel_a', 'kbsel_b'] });
    expect(s.level).toBe('none');
    const fromA = s.considered.find((g) => g.kernel === A)!;
    expect(reasonsOf(fromA.notCompatible, 'incomplete')).toEqual([{ kind: 'incomplete', missing: ['kbsel_b'] }]);
    // Without b in the build its import of kbsel_hello has no provider on the target.
    const bAlone = selectBinary([pa.b], t, { sourceAvailable: false });
    expect(reasonsOf(bAlone.considered[0]!.notCompatible, 'missing-symbol').map((r) => r.symbol)).toEqual(['kbsel_hello']);
  });

  test('a module without modversions cannot be compatible', async () => {
    const t = await compatFacts();
    const bare: Candidate = { ...pa.b, versions: [], vermagic: pa.b.vermagic.replace('modversions ', '') };
    const s = selectBinary([pa.a, bare], t, { sourceAvailable: false });
    expect(s.level).toBe('none');
    expect(reasonsOf(s.considered[0]!.notCompatible, 'no-modversions')).toEqual([{ kind: 'no-modversions', module: 'kbsel_b' }]);
    expect(reasonsOf(s.considered[0]!.notCompatible, 'vermagic')[0]).toMatchObject({ module: 'kbsel_b', onlyTarget: ['modversions'] });
  });

  test('a symvers digest that differs only blocks exact', () => {
    const other = (c: Candidate): Candidate => ({ ...c, symversDigest: 'sha256:' + '0'.repeat(64) });
    const s = selectBinary(pkg(pa).map(other), targetA, { sourceAvailable: false });
    expect(s.level).toBe('compatible');
    expect(reasonsOf(s.chosen!.notExact, 'symvers-digest')).toHaveLength(2);
    const same = (c: Candidate): Candidate => ({ ...c, symversDigest: targetA.symversDigest! });
    expect(selectBinary(pkg(pa).map(same), targetA, { sourceAvailable: false }).level).toBe('exact');
  });

  test('target with headers but no in-tree module: the same release with identical symvers is exact, anything else is not', () => {
    const headersOnly: TargetFacts = { ...targetA, vermagic: null };
    const same = (c: Candidate): Candidate => ({ ...c, symversDigest: targetA.symversDigest! });
    const s = selectBinary(pkg(pa).map(same), headersOnly, { sourceAvailable: false });
    expect(s.level).toBe('exact');
    // Without a recorded digest, or with another one, the build cannot be identified.
    expect(selectBinary(pkg(pa).map((c) => ({ ...c, symversDigest: undefined })), headersOnly, { sourceAvailable: false }).level).toBe('none');
    const other = (c: Candidate): Candidate => ({ ...c, symversDigest: 'sha256:' + '0'.repeat(64) });
    expect(selectBinary(pkg(pa).map(other), headersOnly, { sourceAvailable: false }).level).toBe('none');
  });
});

describe('ranking and output', () => {
  /** The same real binaries relabelled as a build for another release (as a kABI-stable rebuild would be). */
  const relabel = (c: Candidate, kernel: string): Candidate => ({
    ...c,
    id: `${c.module}@${kernel}`,
    kernel,
    vermagic: kernel + c.vermagic.slice(c.vermagic.indexOf(' ')),
  });

  test('deterministic: exact before compatible, then newest kernel, independent of input order', async () => {
    const t = await compatFacts();
    const older = pkg(pa).map((c) => relabel(c, '6.0.1-1-amd64'));
    const newer = pkg(pa).map((c) => relabel(c, '6.100.0-1-amd64'));
    const all = [...older, ...pkg(pa), ...newer];
    const s1 = selectBinary(all, t, { sourceAvailable: false });
    const s2 = selectBinary([...all].reverse(), t, { sourceAvailable: false });
    expect(s1.level).toBe('compatible');
    expect(s1.chosen?.kernel).toBe('6.100.0-1-amd64');
    expect(s1.considered.map((g) => g.kernel)).toEqual(['6.100.0-1-amd64', A, '6.0.1-1-amd64'].sort((a, b) => compareKernelRelease(b, a)));
    expect(s2).toEqual(s1);
    // A build for the target's own release wins over a newer compatible one.
    const s3 = selectBinary([...newer, ...pkg(pa)], targetA, { sourceAvailable: false });
    expect(s3.level).toBe('exact');
    expect(s3.chosen?.kernel).toBe(A);
    expect(s3.considered.map((g) => g.level)).toEqual(['exact', 'compatible']);
  });

  test('nearest misses: same arch and matching vermagic tail rank before CRC counts', () => {
    const wrongArch = pkg(pa).map((c) => ({ ...relabel(c, '6.200.0-1-arm64'), arch: 'aarch64' }));
    const rt = pkg(pa).map((c) => ({ ...relabel(c, '6.150.0-1-rt-amd64'), vermagic: c.vermagic.replace('preempt ', 'preempt_rt ') }));
    const s = selectBinary([...wrongArch, ...rt, ...pkg(pb)], { ...targetA, kernel: 'x' }, { sourceAvailable: false, nearest: 3 });
    expect(s.level).toBe('none');
    expect(s.considered.map((g) => g.kernel)).toEqual([B, '6.150.0-1-rt-amd64', '6.200.0-1-arm64']);
    const rtReason = reasonsOf(s.considered[1]!.notCompatible, 'vermagic')[0]!;
    expect(rtReason.onlyCandidate).toEqual(['preempt_rt']);
    expect(rtReason.onlyTarget).toEqual(['preempt']);
    expect(explain(s).join('\n')).toContain('built for arch aarch64, target is x86_64');
  });

  test('the Selection is plain JSON', () => {
    for (const s of [
      selectBinary(pkg(pa), targetA, { sourceAvailable: false }),
      selectBinary(pkg(pb), targetA, { sourceAvailable: false }),
    ] as Selection[]) {
      expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    }
  });

  test('candidates from a bundle target config select like the ELF-derived ones', () => {
    const config: TargetConfig = {
      schemaVersion: 1,
      package: { name: 'kbsel', version: '1' },
      kernelRelease: A,
      arch: ARCH,
      vermagic: pa.a.vermagic,
      symversDigest: targetA.symversDigest!,
      modules: pkg(pa).map((c) => ({
        name: c.module,
        file: `${c.module}.ko`,
        destLocation: '/updates/dkms',
        digest: c.id,
        size: 1,
        integrity: 'sha512-x',
        compression: 'none',
        depends: c.depends,
        versions: c.versions.map((v) => [v.symbol, formatCrc(v.crc)] as [string, string]),
      })),
    };
    const cands = candidatesFromTargetConfig(config);
    expect(cands.map((c) => c.versions)).toEqual(pkg(pa).map((c) => c.versions));
    expect(selectBinary(cands, targetA, { sourceAvailable: false }).level).toBe('exact');
    expect(groupCandidates(cands)).toHaveLength(1);
  });

  test('kernel release order is numeric', () => {
    const ks = ['6.1.0-9-amd64', '6.12.117+deb12-amd64', '6.1.0-56-amd64', '5.10.0-30-amd64'];
    expect([...ks].sort(compareKernelRelease)).toEqual(['5.10.0-30-amd64', '6.1.0-9-amd64', '6.1.0-56-amd64', '6.12.117+deb12-amd64']);
  });
});

// Keep a reference to the headers actually compared, so a failure names them.
test('fixture sanity: A and B really differ in CRCs', () => {
  const a = readFileSync(`/lib/modules/${A}/build/Module.symvers`, 'utf8');
  const b = readFileSync(`/lib/modules/${B}/build/Module.symvers`, 'utf8');
  expect(a).not.toBe(b);
});

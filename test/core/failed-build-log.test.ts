// A failed build keeps its log where dkms keeps it, <dkmstree>/<m>/<v>/build/make.log
// (the file Debian's dkms-autopkgtest prints and Ubuntu's apport hook attaches),
// and leaves no empty directory dkms would not leave. Compared with real dkms
// 3.0.10 on its own scratch tree.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { haveDkms, realDkms } from '../helpers/real-dkms.js';
import { addSource, kbundle, makeScratch, sh, type Scratch } from '../helpers/scratch.js';

const [K1, K2] = twoKernels();
const args = (s: Scratch) => [...s.treeArgs, '--etcdir', s.etcDir];
const COMPILER_ERROR = /error: .this_symbol_does_not_exist. undeclared/;

const emptyDirs = (tree: string) => sh('find', [tree, '-type', 'd', '-empty']).stdout.split('\n').filter(Boolean);

/**
 * The tree as dkms would show it: kbundle's own entries (.kbundle-*, the
 * per-kernel build-<k>-<a> dirs) left out, and of build/ only make.log (dkms
 * also keeps its copy of the source and the objects there).
 */
function dkmsView(tree: string, extra: string[] = []): string[] {
  const all = sh('find', [tree, '-mindepth', '1', '-printf', '%P\n']).stdout.split('\n').filter(Boolean);
  return [...all, ...extra]
    .filter((p) => !/(^|\/)\.kbundle-/.test(p) && !/^[^/]+\/[^/]+\/build-/.test(p))
    .filter((p) => !/^[^/]+\/[^/]+\/build\/./.test(p) || /^[^/]+\/[^/]+\/build\/make\.log$/.test(p))
    .sort();
}

/** "Error! ..." blocks of stderr, each with its detail lines. */
function errorBlocks(stderr: string): string[][] {
  const blocks: string[][] = [];
  for (const line of stderr.split('\n')) {
    if (line.startsWith('Error! ')) blocks.push([line]);
    else if (blocks.length && line) blocks[blocks.length - 1]!.push(line);
  }
  return blocks;
}

function fixBroken(s: Scratch): void {
  const c = join(s.sourceTree, 'broken-0.1/broken.c');
  writeFileSync(c, readFileSync(c, 'utf8').replace('this_symbol_does_not_exist', '0'));
}

describe('the log of a failed build', () => {
  it('is also at <m>/<v>/build/make.log, named in the error, with the compiler error', () => {
    const s = makeScratch([K1]);
    addSource(s, 'test/fixtures/broken-0.1');
    const r = kbundle(['build', 'broken/0.1', '-k', K1, ...args(s)]);
    expect(r.code).toBe(10);
    const shared = join(s.dkmsTree, 'broken/0.1/build/make.log');
    const own = join(s.dkmsTree, `broken/0.1/build-${K1}-x86_64/make.log`);
    const [block, ...more] = errorBlocks(r.stderr);
    expect(more).toEqual([]);
    expect(block).toEqual([
      `Error! Bad return status for module build on kernel: ${K1} (x86_64)`,
      `Consult ${own} for more information.`,
      `The build directory was kept: ${join(s.dkmsTree, `broken/0.1/build-${K1}-x86_64`)}`,
      `A copy of this log is at ${shared} (where dkms keeps the log of a failed build).`,
    ]);
    const log = readFileSync(shared, 'utf8');
    expect(log).toMatch(COMPILER_ERROR);
    expect(log.split('\n')[0]).toBe(`DKMS make.log for broken-0.1 for kernel ${K1} (x86_64)`);
    expect(readFileSync(own, 'utf8')).toBe(log);
    expect(emptyDirs(s.dkmsTree)).toEqual([]);
  });

  it.skipIf(!haveDkms)('leaves the tree dkms leaves: build/make.log, the key pair, no empty dirs', () => {
    const kb = makeScratch([K1]);
    const dk = makeScratch([K1]);
    for (const s of [kb, dk]) addSource(s, 'test/fixtures/broken-0.1');
    const r = kbundle(['build', 'broken/0.1', '-k', K1, ...args(kb)]);
    const d = realDkms(dk, ['build', 'broken/0.1', '-k', K1]);
    expect(r.code).toBe(10);
    expect(d.code).toBe(10);
    // dkms names its log the same way (3.0.10 actual_build: "Consult $build_log for more information.").
    expect(d.stderr).toContain(`Consult ${join(dk.dkmsTree, 'broken/0.1/build/make.log')} for more information.`);
    expect(readFileSync(join(dk.dkmsTree, 'broken/0.1/build/make.log'), 'utf8')).toMatch(COMPILER_ERROR);

    // dkms 3.0.10 keeps its key pair in /var/lib/dkms, mounted from <root>/real-dkms-var.
    const dkmsKeys = readdirSync(join(dk.root, 'real-dkms-var'));
    expect(dkmsView(kb.dkmsTree)).toEqual(dkmsView(dk.dkmsTree, dkmsKeys));
    expect(dkmsView(kb.dkmsTree)).toEqual(['broken', 'broken/0.1', 'broken/0.1/build', 'broken/0.1/build/make.log', 'broken/0.1/source', 'mok.key', 'mok.pub']);
    expect(emptyDirs(dk.dkmsTree)).toEqual([]);
    expect(emptyDirs(kb.dkmsTree)).toEqual([]);

    // A later successful build removes build/ in both (dkms: clean_build's rm -rf).
    for (const s of [kb, dk]) fixBroken(s);
    expect(kbundle(['build', 'broken/0.1', '-k', K1, ...args(kb)]).code).toBe(0);
    expect(realDkms(dk, ['build', 'broken/0.1', '-k', K1]).code).toBe(0);
    expect(existsSync(join(dk.dkmsTree, 'broken/0.1/build'))).toBe(false);
    expect(existsSync(join(kb.dkmsTree, 'broken/0.1/build'))).toBe(false);
    // Inside <k>/<a> the trees differ in ways that are not about failed builds (docs/usage.md).
    const top = (paths: string[]) => paths.filter((p) => p.split('/').length <= 3);
    expect(top(dkmsView(kb.dkmsTree))).toEqual(top(dkmsView(dk.dkmsTree, dkmsKeys)));
    expect(top(dkmsView(kb.dkmsTree))).toEqual(['broken', 'broken/0.1', `broken/0.1/${K1}`, 'broken/0.1/source', 'mok.key', 'mok.pub']);
    expect(emptyDirs(dk.dkmsTree)).toEqual([]);
    expect(emptyDirs(kb.dkmsTree)).toEqual([]);
  });

  it('with two failed kernels holds the first failure; each error says which kernel that is and where its own log is', () => {
    const s = makeScratch([K1, K2]);
    addSource(s, 'test/fixtures/broken-0.1');
    const r = kbundle(['build', 'broken/0.1', '-k', K1, '-k', K2, ...args(s)]);
    expect(r.code).toBe(10);
    const shared = join(s.dkmsTree, 'broken/0.1/build/make.log');
    const blocks = errorBlocks(r.stderr);
    expect(blocks).toHaveLength(2);
    const kernelOf = (b: string[]) => [K1, K2].find((k) => b[0] === `Error! Bad return status for module build on kernel: ${k} (x86_64)`)!;
    expect(blocks.map(kernelOf).sort()).toEqual([K1, K2].sort());
    const holder = blocks.find((b) => b.includes(`A copy of this log is at ${shared} (where dkms keeps the log of a failed build).`));
    expect(holder).toBeDefined();
    const first = kernelOf(holder!);
    const other = blocks.find((b) => b !== holder)!;
    const second = kernelOf(other);
    expect(other).toContain(`Consult ${join(s.dkmsTree, `broken/0.1/build-${second}-x86_64/make.log`)} for more information.`);
    expect(other).toContain(`${shared} holds the log of broken/0.1 for kernel ${first} (x86_64), the first kernel that failed in this run.`);
    const log = readFileSync(shared, 'utf8');
    expect(log.split('\n')[0]).toBe(`DKMS make.log for broken-0.1 for kernel ${first} (x86_64)`);
    expect(log).toBe(readFileSync(join(s.dkmsTree, `broken/0.1/build-${first}-x86_64/make.log`), 'utf8'));
    expect(readFileSync(join(s.dkmsTree, `broken/0.1/build-${second}-x86_64/make.log`), 'utf8')).toMatch(COMPILER_ERROR);
    expect(emptyDirs(s.dkmsTree)).toEqual([]);
  });

  it('of an earlier run is replaced by the next failure and removed by the next success', () => {
    const s = makeScratch([K1, K2]);
    addSource(s, 'test/fixtures/broken-0.1');
    const shared = join(s.dkmsTree, 'broken/0.1/build/make.log');
    expect(kbundle(['build', 'broken/0.1', '-k', K1, ...args(s)]).code).toBe(10);
    expect(readFileSync(shared, 'utf8')).toContain(`for kernel ${K1} (x86_64)`);
    const i = kbundle(['install', 'broken/0.1', '-k', K2, ...args(s)]);
    expect(i.code).toBe(10);
    expect(i.stderr).toContain(`A copy of this log is at ${shared}`);
    expect(readFileSync(shared, 'utf8').split('\n')[0]).toBe(`DKMS make.log for broken-0.1 for kernel ${K2} (x86_64)`);
    fixBroken(s);
    const ok = kbundle(['build', 'broken/0.1', '-k', K1, ...args(s)]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(existsSync(join(s.dkmsTree, 'broken/0.1/build'))).toBe(false);
    expect(kbundle(['status', 'broken', ...args(s)]).stdout.trim()).toBe(`broken/0.1, ${K1}, x86_64: built`);
    expect(emptyDirs(s.dkmsTree)).toEqual([]);
  });
});

// Build behaviours a DKMS user relies on, against real kernel headers.
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { addSource, kbundle, makeScratch, sh, type Scratch } from '../helpers/scratch.js';

const [K1, K2] = twoKernels();

function moduleFile(s: Scratch, m: string, v: string, k: string, name: string): string {
  const dir = join(s.dkmsTree, m, v, k, 'x86_64', 'module');
  const f = readdirSync(dir).find((n) => n.startsWith(`${name}.ko`));
  if (!f) throw new Error(`${name}.ko* not in ${dir}: ${readdirSync(dir).join(' ')}`);
  return join(dir, f);
}

describe('build behaviour', () => {
  let s: Scratch;
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) => kbundle([...args, ...s.treeArgs, '--etcdir', s.etcDir], env);

  beforeAll(() => {
    s = makeScratch([K1, K2]);
    for (const f of ['test/fixtures/broken-0.1', 'test/fixtures/patched-1.0', 'test/fixtures/shelly-3.0', 'test/fixtures/excluded-1.0', 'bundles/twomods-2.1']) addSource(s, f);
  });

  it('a failing make exits 10, names the kernel, keeps the build dir and its make.log', () => {
    const r = run(['build', 'broken/0.1', '-k', K1]);
    expect(r.code).toBe(10);
    expect(r.stderr).toContain(`Error! Bad return status for module build on kernel: ${K1} (x86_64)`);
    const logLine = r.stderr.split('\n').find((l) => l.startsWith('Consult '))!;
    const logPath = logLine.replace(/^Consult /, '').replace(/ for more information\.$/, '');
    expect(logPath).toBe(join(s.dkmsTree, `broken/0.1/build-${K1}-x86_64/make.log`));
    const log = readFileSync(logPath, 'utf8');
    expect(log).toContain('this_symbol_does_not_exist');
    expect(log).toMatch(/# exit code: [1-9]/);
    expect(existsSync(join(s.dkmsTree, `broken/0.1/build-${K1}-x86_64/broken.c`))).toBe(true);
    expect(run(['status', 'broken']).stdout.trim()).toBe('broken/0.1: added');
  });

  it('BUILD_EXCLUSIVE_KERNEL that does not match exits 77 with the reason', () => {
    const r = run(['build', 'excluded/1.0', '-k', K1]);
    expect(r.code).toBe(77);
    expect(r.stderr).toContain('BUILD_EXCLUSIVE');
    expect(r.stderr).toContain('^5\\.');
    expect(existsSync(join(s.dkmsTree, 'excluded/1.0', K1))).toBe(false);
  });

  it('a PATCH_MATCH patch applies to the matching kernel only', () => {
    const r = run(['build', 'patched/1.0', '-k', K1, '-k', K2]);
    expect(r.code, r.stderr).toBe(0);
    const desc = (k: string) => sh('modinfo', ['-F', 'description', moduleFile(s, 'patched', '1.0', k, 'patched')]).stdout.trim();
    const k612 = [K1, K2].find((k) => k.startsWith('6.12.'))!;
    const other = [K1, K2].find((k) => k !== k612)!;
    expect(desc(k612)).toBe('patched for 6.12');
    expect(desc(other)).toBe('unpatched');
    expect(readFileSync(join(s.dkmsTree, `patched/1.0/${k612}/x86_64/log/make.log`), 'utf8')).toContain('Applying patch describe-612.patch');
    expect(readFileSync(join(s.dkmsTree, `patched/1.0/${other}/x86_64/log/make.log`), 'utf8')).not.toContain('describe-612.patch');
  });

  it('a conf with shell logic (sourcing .config, case, $(...)) evaluates per kernel and builds', () => {
    const r = run(['install', 'shelly/3.0', '-k', K1, '-k', K2]);
    expect(r.code, r.stderr).toBe(0);
    for (const k of [K1, K2]) {
      const flavour = k.startsWith('6.1.') ? 'classic' : 'modern';
      const f = moduleFile(s, 'shelly', '3.0', k, `shelly_${flavour}`);
      expect(sh('modinfo', ['-F', 'flavour', f]).stdout.trim()).toBe(`${flavour}-sig-k6`);
      expect(readdirSync(join(s.installTree, k, 'updates/dkms')).some((n) => n.startsWith(`shelly_${flavour}.ko`))).toBe(true);
    }
    const conf = JSON.parse(run(['conf', 'shelly/3.0', '-k', K1, '--json']).stdout);
    expect(conf.modules[0].destName).toBe('shelly_classic');
    expect(conf.make).toContain('SHELLY_FLAVOUR=classic-sig-k6');
  });

  it('two modules in subdirectories are both built and installed', () => {
    const r = run(['install', 'twomods/2.1', '-k', K1]);
    expect(r.code, r.stderr).toBe(0);
    const files = readdirSync(join(s.installTree, K1, 'updates/dkms'));
    expect(files.some((n) => n.startsWith('twomods_alpha.ko'))).toBe(true);
    expect(files.some((n) => n.startsWith('twomods_beta.ko'))).toBe(true);
    expect(readFileSync(join(s.installTree, K1, 'modules.dep'), 'utf8')).toMatch(/twomods_beta\.ko[^:]*: .*twomods_alpha\.ko/);
  });

  it('concurrent builds for two kernels keep separate, correct logs', () => {
    addSource(s, 'bundles/hello-1.0');
    const r = run(['build', 'hello/1.0', '-k', K1, '-k', K2, '-j', '2', '--no-cache']);
    expect(r.code, r.stderr).toBe(0);
    // Plain progress lines (no TTY), on stdout as dkms's: both kernels start before either finishes.
    const lines = r.stdout.split('\n');
    const started = (k: string) => lines.findIndex((l) => l.includes(k) && l.endsWith(': started'));
    const finished = (k: string) => lines.findIndex((l) => l.includes(k) && / done in /.test(l));
    expect(started(K1)).toBeGreaterThanOrEqual(0);
    expect(Math.max(started(K1), started(K2))).toBeLessThan(Math.min(finished(K1), finished(K2)));
    for (const [k, other] of [[K1, K2], [K2, K1]] as const) {
      const log = readFileSync(join(s.dkmsTree, `hello/1.0/${k}/x86_64/log/make.log`), 'utf8');
      expect(log).toContain(`KERNELRELEASE=${k}`);
      expect(log).toContain(`hello/1.0/build-${k}-x86_64`);
      expect(log).not.toContain(other);
    }
  });

  it('the build cache restores the module without running make again', () => {
    if (!existsSync(join(s.sourceTree, 'hello-1.0'))) addSource(s, 'bundles/hello-1.0');
    // A make wrapper on PATH records every invocation, then runs the real make.
    const wrapDir = join(s.root, 'wrap');
    const record = join(s.root, 'make-calls.txt');
    mkdirSync(wrapDir, { recursive: true });
    writeFileSync(join(wrapDir, 'make'), `#!/bin/sh\necho "$*" >> '${record}'\nexec /usr/bin/make "$@"\n`);
    chmodSync(join(wrapDir, 'make'), 0o755);
    const env = { PATH: `${wrapDir}:${process.env.PATH}` };
    const first = run(['build', 'hello/1.0', '-k', K1, '--force'], env);
    expect(first.code, first.stderr).toBe(0);
    const callsAfterFirst = readFileSync(record, 'utf8');
    expect(callsAfterFirst).toContain(`KERNELRELEASE=${K1}`);
    const before = moduleFile(s, 'hello', '1.0', K1, 'hello');
    const firstBytes = readFileSync(before);

    writeFileSync(record, '');
    const second = run(['build', 'hello/1.0', '-k', K1, '--force'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(readFileSync(record, 'utf8')).not.toContain('KERNELRELEASE');
    expect(readFileSync(join(s.dkmsTree, `hello/1.0/${K1}/x86_64/log/make.log`), 'utf8')).toContain('Restored from the kbundle build cache');
    expect(readFileSync(moduleFile(s, 'hello', '1.0', K1, 'hello')).equals(firstBytes)).toBe(true);

    // A new signing key reuses the compiled module but signs it anew.
    expect(run(['generate_mok']).code).toBe(0);
    writeFileSync(record, '');
    const resigned = run(['build', 'hello/1.0', '-k', K1, '--force'], env);
    expect(resigned.code, resigned.stderr).toBe(0);
    expect(readFileSync(record, 'utf8')).not.toContain('KERNELRELEASE');
    expect(sh('modinfo', ['-F', 'signer', moduleFile(s, 'hello', '1.0', K1, 'hello')]).stdout.trim()).toBe('DKMS module signing key');

    writeFileSync(record, '');
    const bypass = run(['build', 'hello/1.0', '-k', K1, '--force', '--no-cache'], env);
    expect(bypass.code, bypass.stderr).toBe(0);
    expect(readFileSync(record, 'utf8')).toContain(`KERNELRELEASE=${K1}`);
  });
});

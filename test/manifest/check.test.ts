// `kbundle bundle check` through bin/kbundle: what would be built, and the
// exit code a CI job gates on, without building anything.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmp } from '../bundle/fixtures.js';
import { installedKernels } from '../helpers/kernels.js';
import { BIN, REPO, kbundle } from '../helpers/scratch.js';

const KERNELS = installedKernels();
const S61 = KERNELS.filter((k) => k.startsWith('6.1.'));

/** A project dir: the example hello source, its keys, and `manifest` as kbundle.yaml. */
function project(manifest: string, conf?: string): { dir: string; file: string } {
  const dir = tmp('kbundle-check-');
  cpSync(join(REPO, 'bundles/hello-1.0'), join(dir, 'hello-1.0'), { recursive: true });
  cpSync(join(REPO, 'bundles/keys'), join(dir, 'keys'), { recursive: true });
  if (conf !== undefined) writeFileSync(join(dir, 'hello-1.0/dkms.conf'), conf);
  const file = join(dir, 'kbundle.yaml');
  writeFileSync(file, manifest);
  return { dir, file };
}

const manifest = (kernels: string[], extra = '') => `apiVersion: kbundle/v1
source: hello-1.0
kernels: [${kernels.map((k) => JSON.stringify(k)).join(', ')}]
arches: [x86_64]
signing:
  moduleKey: keys/example-module.key
  moduleCert: keys/example-module.der
bundleKey: keys/example-bundle.key
${extra}`;

const noStack = (stderr: string) => expect(stderr).not.toMatch(/\n\s+at .*:\d+:\d+\)?\n/);

describe('kbundle bundle check', () => {
  it('lists module, version and every kernel x arch, builds nothing, exits 0', () => {
    const { dir, file } = project(manifest(['6.1.0-*-amd64', '*']));
    const before = readdirSync(dir).sort();
    const r = kbundle(['bundle', 'check', file]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`${file}: OK`);
    expect(lines[1]).toBe(`bundle hello 1.0 -> ${join(dir, 'hello-1.0.kbundle')}`);
    expect(lines).toContain(`kernel 6.1.0-*-amd64: ${S61.join(', ')}`);
    expect(lines).toContain(`kernel *: ${KERNELS.join(', ')}`);
    for (const k of KERNELS) expect(r.stdout).toMatch(new RegExp(`^hello +1\\.0 +${k.replace(/[.+]/g, '\\$&')} +x86_64 +/lib/modules/`, 'm'));
    expect(lines).toContain(`${KERNELS.length} build(s) of ${KERNELS.length}`);
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it('--json gives the same plan for scripts', () => {
    const { file } = project(manifest(['*']));
    const r = kbundle(['bundle', 'check', file, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { ok: boolean; name: string; version: string; builds: { module: string; version: string; kernel: string; arch: string; excluded: string[] }[] };
    expect([j.ok, j.name, j.version]).toEqual([true, 'hello', '1.0']);
    expect(j.builds.map((b) => [b.module, b.version, b.kernel, b.arch, b.excluded])).toEqual(KERNELS.map((k) => ['hello', '1.0', k, 'x86_64', []]));
  });

  it('reads ./kbundle.yaml by default', () => {
    const { dir } = project(manifest(['6.1.0-*-amd64']));
    const r = spawnSync(process.execPath, [BIN, 'bundle', 'check'], { cwd: dir, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`${join(dir, 'kbundle.yaml')}: OK`);
  });

  it('exits 34 with file:line:col on a bad manifest, alias bombs included, never with a stack', () => {
    const { file } = project(manifest(['*'], 'compression: {level: high}\n'));
    const r = kbundle(['bundle', 'check', file]);
    expect(r.code).toBe(34);
    expect(r.stderr).toContain(`${file}:9:22: compression.level must be integer, got string "high"`);
    const bomb = project(`a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n`);
    const rb = kbundle(['bundle', 'check', bomb.file]);
    expect(rb.code).toBe(34);
    expect(rb.stderr).toContain(`${bomb.file}:2:8: aliases expand to more than 100 copies`);
    noStack(rb.stderr);
    const undef = project('apiVersion: kbundle/v1\nsource: *src\nkernels: [x]\n');
    const ru = kbundle(['bundle', 'check', undef.file]);
    expect([ru.code, ru.stderr]).toEqual([34, `Error! ${undef.file}:2:9: alias *src has no anchor &src before it\n`]);
  });

  it('exits 36 when a kernel pattern matches no installed headers, naming the manifest and the pattern', () => {
    const { file } = project(manifest(['6.1.0-*-amd64', '5.10.*']));
    const r = kbundle(['bundle', 'check', file]);
    expect(r.code).toBe(36);
    expect(r.stderr).toContain(`${file}: kernel pattern "5.10.*" matches no kernel with headers under /lib/modules (installed: `);
    expect(r.stdout).toBe('');
  });

  it('exits 77 and marks the target when dkms.conf excludes a kernel, as the build would stop there', () => {
    const conf = "PACKAGE_NAME=hello\nPACKAGE_VERSION=1.0\nBUILT_MODULE_NAME[0]=hello\nDEST_MODULE_LOCATION[0]=/updates/dkms\nBUILD_EXCLUSIVE_KERNEL='^6\\.1\\.'\n";
    const { file } = project(manifest(['*']), conf);
    const r = kbundle(['bundle', 'check', file]);
    expect(r.code).toBe(77);
    const other = KERNELS.filter((k) => !k.startsWith('6.1.'));
    expect(other.length).toBeGreaterThan(0);
    expect(r.stdout.split('\n')[0]).toBe(`${file}: ${other.length} target(s) excluded by dkms.conf; bundle build stops there unless --keep-going`);
    for (const k of other) expect(r.stdout).toContain(`EXCLUDED: BUILD_EXCLUSIVE_KERNEL "^6\\.1\\." does not match ${k}`);
  });

  it('refuses what the build would refuse: a missing key (39), a source without dkms.conf (34), a bad conf (8)', () => {
    const noKey = project(manifest(['*']).replace('keys/example-bundle.key', 'keys/missing.key'));
    const rk = kbundle(['bundle', 'check', noKey.file]);
    expect([rk.code, rk.stderr.trim()]).toEqual([39, `Error! ${noKey.file}: bundleKey ${join(noKey.dir, 'keys/missing.key')} does not exist.`]);
    const noSrc = project(manifest(['*']).replace('source: hello-1.0', 'source: nowhere'));
    const rs = kbundle(['bundle', 'check', noSrc.file]);
    expect([rs.code, rs.stderr.trim()]).toEqual([34, `Error! ${noSrc.file}: source ${join(noSrc.dir, 'nowhere')} has no dkms.conf.`]);
    const bad = project(manifest(['*']), 'PACKAGE_NAME=hello\nPACKAGE_VERSION=1.0\nDEST_MODULE_NAME[99999999999999999999]=x\n');
    const rc = kbundle(['bundle', 'check', bad.file]);
    expect(rc.code).toBe(8);
    expect(rc.stderr).toContain(`${join(bad.dir, 'hello-1.0/dkms.conf')}:3: DEST_MODULE_NAME[7766279631452241919]: array index above 1023`);
  });

  it('--help explains the exit codes', () => {
    const r = kbundle(['bundle', 'check', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: kbundle bundle check [options] [manifest]');
    expect(r.stdout).toContain('36 a kernel pattern matches no installed headers');
  });
});

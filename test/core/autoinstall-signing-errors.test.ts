// autoinstall (and the kernel hook that runs it), match, module signing, and
// the errors a user gets for bad input.
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { addSource, kbundle, makeScratch, REPO, sh, type Scratch } from '../helpers/scratch.js';

const [K1, K2] = twoKernels();
const args = (s: Scratch) => [...s.treeArgs, '--etcdir', s.etcDir];

describe('autoinstall', () => {
  it('installs every AUTOINSTALL=yes module, skips excluded ones, reports per kernel', () => {
    const s = makeScratch([K1, K2]);
    addSource(s, 'bundles/hello-1.0');
    addSource(s, 'bundles/twomods-2.1');
    addSource(s, 'test/fixtures/excluded-1.0');
    for (const m of ['hello/1.0', 'twomods/2.1', 'excluded/1.0']) expect(kbundle(['add', m, ...args(s)]).code).toBe(0);
    const r = kbundle(['autoinstall', '-k', K1, '-k', K2, ...args(s)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Autoinstall on ${K1} succeeded for module(s) hello/1.0 twomods/2.1.`);
    expect(kbundle(['status', ...args(s)]).stdout.trim().split('\n')).toEqual(
      [
        'excluded/1.0: added',
        `hello/1.0, ${K1}, x86_64: installed`,
        `hello/1.0, ${K2}, x86_64: installed`,
        `twomods/2.1, ${K1}, x86_64: installed`,
        `twomods/2.1, ${K2}, x86_64: installed`,
      ].sort(),
    );
    // Nothing left to do: a second run changes nothing and succeeds.
    expect(kbundle(['autoinstall', '-k', K1, ...args(s)]).code).toBe(0);
    // A failing module makes autoinstall exit 11, the others still install.
    addSource(s, 'test/fixtures/broken-0.1');
    writeFileSync(join(s.sourceTree, 'broken-0.1/dkms.conf'), readFileSync(join(s.sourceTree, 'broken-0.1/dkms.conf'), 'utf8') + 'AUTOINSTALL=yes\n');
    expect(kbundle(['add', 'broken/0.1', ...args(s)]).code).toBe(0);
    expect(kbundle(['uninstall', 'hello/1.0', '-k', K1, ...args(s)]).code).toBe(0);
    const bad = kbundle(['autoinstall', '-k', K1, ...args(s)]);
    expect(bad.code).toBe(11);
    expect(bad.stderr).toContain(`Autoinstall on ${K1} failed for module(s) broken/0.1(10).`);
    expect(kbundle(['status', 'hello', '-k', K1, ...args(s)]).stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: installed`);
  });

  it('the kernel postinst hook runs autoinstall for the new kernel', () => {
    const s = makeScratch([K1]);
    addSource(s, 'bundles/hello-1.0');
    expect(kbundle(['add', 'hello/1.0', ...args(s)]).code).toBe(0);
    // The hook calls "$KBUNDLE autoinstall -k K"; point it at this scratch tree.
    const wrapper = join(s.root, 'kbundle-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\nexec node ${join(REPO, 'bin/kbundle')} "$@" ${args(s).join(' ')}\n`);
    chmodSync(wrapper, 0o755);
    const r = sh(join(REPO, 'hooks/kernel/postinst.d/kbundle'), [K1, `/boot/vmlinuz-${K1}`], { KBUNDLE: wrapper });
    expect(r.code, r.stderr).toBe(0);
    expect(kbundle(['status', ...args(s)]).stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: installed`);
    const rm = sh(join(REPO, 'hooks/kernel/prerm.d/kbundle'), [K1], { KBUNDLE: wrapper });
    expect(rm.code, rm.stderr).toBe(0);
    expect(kbundle(['status', ...args(s)]).stdout.trim()).toBe('hello/1.0: added');
  });

  it('match installs on a kernel what is installed on the template kernel', () => {
    const s = makeScratch([K1, K2]);
    addSource(s, 'bundles/hello-1.0');
    expect(kbundle(['install', 'hello/1.0', '-k', K1, ...args(s)]).code).toBe(0);
    const r = kbundle(['match', '--templatekernel', K1, '-k', K2, ...args(s)]);
    expect(r.code, r.stderr).toBe(0);
    expect(kbundle(['status', ...args(s)]).stdout.trim().split('\n')).toEqual([`hello/1.0, ${K1}, x86_64: installed`, `hello/1.0, ${K2}, x86_64: installed`].sort());
  });
});

describe('signing', () => {
  it('with a MOK key, every built module carries a signature modinfo and openssl accept', () => {
    const s = makeScratch([K1, K2]);
    addSource(s, 'bundles/hello-1.0');
    const g = kbundle(['generate_mok', ...args(s)]);
    expect(g.code, g.stderr).toBe(0);
    expect(existsSync(join(s.dkmsTree, 'mok.key')) && existsSync(join(s.dkmsTree, 'mok.pub'))).toBe(true);
    expect(kbundle(['build', 'hello/1.0', '-k', K1, '-k', K2, ...args(s)]).code).toBe(0);
    const serial = sh('openssl', ['x509', '-inform', 'DER', '-in', join(s.dkmsTree, 'mok.pub'), '-noout', '-serial']).stdout.trim().split('=')[1]!;
    for (const k of [K1, K2]) {
      const dir = join(s.dkmsTree, 'hello/1.0', k, 'x86_64/module');
      const f = join(dir, readdirSync(dir).find((n) => n.startsWith('hello.ko'))!);
      expect(sh('modinfo', ['-F', 'signer', f]).stdout.trim()).toBe('DKMS module signing key');
      expect(sh('modinfo', ['-F', 'sig_hashalgo', f]).stdout.trim()).toBe('sha256');
      expect(sh('modinfo', ['-F', 'sig_key', f]).stdout.trim().replace(/:/g, '')).toBe(serial.toUpperCase());
      // Verify the CMS over the module body with openssl, as docs/formats/module-signature.md ("Verifying offline") does.
      const ko = f.endsWith('.xz') ? sh('sh', ['-c', `xz -dc '${f}' > '${s.root}/m.ko' && echo ok`]) : sh('cp', [f, `${s.root}/m.ko`]);
      expect(ko.code).toBe(0);
      const py = `import struct,sys\nb=open(sys.argv[1],'rb').read()\nassert b.endswith(b'~Module signature appended~\\n')\nn=struct.unpack('>I',b[-40+8:-40+12])[0]\nopen(sys.argv[2],'wb').write(b[-40-n:-40])\nopen(sys.argv[3],'wb').write(b[:-40-n])\n`;
      expect(sh('python3', ['-c', py, `${s.root}/m.ko`, `${s.root}/m.p7s`, `${s.root}/m.body`]).code).toBe(0);
      sh('openssl', ['x509', '-inform', 'DER', '-in', join(s.dkmsTree, 'mok.pub'), '-out', `${s.root}/cert.pem`]);
      const v = sh('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', `${s.root}/m.p7s`, '-content', `${s.root}/m.body`, '-certfile', `${s.root}/cert.pem`, '-nointern', '-noverify', '-out', '/dev/null']);
      expect(v.code, v.stderr).toBe(0);
    }
  });
});

describe('bad input', () => {
  it('a dkms.conf with a bash syntax error: exit 8, file and line named, nothing built', () => {
    const s = makeScratch([K1]);
    const src = addSource(s, 'bundles/hello-1.0');
    writeFileSync(join(src, 'dkms.conf'), 'PACKAGE_NAME="hello"\nPACKAGE_VERSION="1.0"\nif [ -n "$kernelver" ]; then\n  MAKE[0]="make"\nfi fi\n');
    const r = kbundle(['build', 'hello/1.0', '-k', K1, ...args(s)]);
    expect(r.code).toBe(8);
    expect(r.stderr).toContain(`${join(src, 'dkms.conf')}:5:`);
    expect(existsSync(join(s.dkmsTree, 'hello/1.0', K1))).toBe(false);
  });

  it('missing kernel headers: exit 21 naming where they were looked for', () => {
    const s = makeScratch([]);
    addSource(s, 'bundles/hello-1.0');
    mkdirSync(join(s.installTree, '9.9.9-nothere'), { recursive: true });
    const r = kbundle(['build', 'hello/1.0', '-k', '9.9.9-nothere', ...args(s)]);
    expect(r.code).toBe(21);
    expect(r.stderr).toContain('Your kernel headers for kernel 9.9.9-nothere cannot be found at /lib/modules/9.9.9-nothere/build');
  });

  it('unknown option exits 2; missing module version exits 1; --help works per command', () => {
    expect(kbundle(['status', '--bogus']).code).toBe(2);
    const r = kbundle(['build', 'hello']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Invalid number of arguments');
    const h = kbundle(['install', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('--kernelsourcedir');
  });

  it('an interrupted build leaves the kernel unbuilt, and the next build succeeds', () => {
    const s = makeScratch([K1]);
    addSource(s, 'bundles/hello-1.0');
    // PRE_BUILD kills the whole kbundle process mid-build.
    const src = join(s.sourceTree, 'hello-1.0');
    writeFileSync(join(src, 'killer.sh'), '#!/bin/sh\n[ -e "$KILL_MARK" ] && kill -9 "$KBUNDLE_PID_TO_KILL"\nexit 0\n');
    chmodSync(join(src, 'killer.sh'), 0o755);
    writeFileSync(join(src, 'dkms.conf'), readFileSync(join(src, 'dkms.conf'), 'utf8') + 'PRE_BUILD="killer.sh"\n');
    const mark = join(s.root, 'kill');
    writeFileSync(mark, '');
    const r = sh('bash', ['-c', `KBUNDLE_PID_TO_KILL=$$ KILL_MARK='${mark}' exec node ${join(REPO, 'bin/kbundle')} build hello/1.0 -k ${K1} ${args(s).join(' ')}`]);
    expect(r.code).not.toBe(0);
    expect(kbundle(['status', ...args(s)]).stdout.trim()).toBe('hello/1.0: added');
    cpSync(mark, `${mark}.bak`);
    sh('rm', ['-f', mark]);
    const again = kbundle(['build', 'hello/1.0', '-k', K1, ...args(s)]);
    expect(again.code, again.stderr).toBe(0);
    expect(kbundle(['status', ...args(s)]).stdout.trim()).toBe(`hello/1.0, ${K1}, x86_64: built`);
  });
});

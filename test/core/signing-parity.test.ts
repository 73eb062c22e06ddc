// With no key configured, kbundle signs the way Debian's dkms 3.0.10 does:
// it generates <tree>/mok.key + mok.pub with dkms's openssl command when they
// are missing, then signs every module with them. Each check runs real dkms
// on its own scratch tree for the same input and compares.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureMok, resolveSigning } from '../../src/build/signing.js';
import { twoKernels } from '../helpers/kernels.js';
import { haveDkms, realDkms } from '../helpers/real-dkms.js';
import { addSource, BIN, kbundle, makeScratch, REPO, sh, type RunResult, type Scratch } from '../helpers/scratch.js';

const [K1, K2] = twoKernels();
const GENERATING = 'Certificate or key are missing, generating self signed certificate for MOK...';
const args = (s: Scratch) => [...s.treeArgs, '--etcdir', s.etcDir];

/** The hello module file kbundle or dkms built for kernel k. */
function helloKo(s: Scratch, k: string): string {
  const dir = join(s.dkmsTree, 'hello/1.0', k, 'x86_64/module');
  const f = readdirSync(dir).find((n) => n.startsWith('hello.ko'));
  if (!f) throw new Error(`no hello.ko* in ${dir}`);
  return join(dir, f);
}

const modinfo = (f: string, field: string) => sh('modinfo', ['-F', field, f]).stdout.trim();
const x509 = (cert: string, ...opts: string[]) => sh('openssl', ['x509', '-inform', 'DER', '-in', cert, '-noout', ...opts]);
const serialOf = (cert: string) => x509(cert, '-serial').stdout.trim().replace(/^serial=/, '');
const mode = (p: string) => statSync(p).mode & 0o777;

/** Everything about a certificate that does not change from one generation to the next. */
function certShape(cert: string): string {
  const text = x509(cert, '-text', '-certopt', 'no_serial,no_validity,no_pubkey,no_sigdump').stdout;
  const days = (Date.parse(x509(cert, '-enddate').stdout.split('=')[1]!) - Date.parse(x509(cert, '-startdate').stdout.split('=')[1]!)) / 86_400_000;
  const bits = /Public-Key: \((\d+) bit\)/.exec(x509(cert, '-text').stdout)?.[1];
  return `${text.replace(/([0-9A-F]{2}:){8,}[0-9A-F]{2}/g, '<id>')}days=${days} bits=${bits}`;
}

/** Exit 0 when the module's appended CMS verifies over its body with `cert` (docs/signing.md "Checking a signed module"). */
function cmsVerify(ko: string, cert: string, work: string): RunResult {
  const plain = join(work, 'plain.ko');
  const got = ko.endsWith('.xz') ? sh('sh', ['-c', `xz -dc '${ko}' > '${plain}'`]) : sh('cp', [ko, plain]);
  if (got.code !== 0) throw new Error(got.stderr);
  const py = [
    'import struct,sys',
    "b=open(sys.argv[1],'rb').read()",
    "assert b.endswith(b'~Module signature appended~\\n')",
    "n=struct.unpack('>I',b[-40+8:-40+12])[0]",
    "open(sys.argv[2],'wb').write(b[-40-n:-40])",
    "open(sys.argv[3],'wb').write(b[:-40-n])",
  ].join('\n');
  const split = sh('python3', ['-c', py, plain, join(work, 'm.p7s'), join(work, 'm.body')]);
  if (split.code !== 0) throw new Error(split.stderr);
  sh('openssl', ['x509', '-inform', 'DER', '-in', cert, '-out', join(work, 'cert.pem')]);
  return sh('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', join(work, 'm.p7s'), '-content', join(work, 'm.body'), '-certfile', join(work, 'cert.pem'), '-nointern', '-noverify', '-out', '/dev/null']);
}

/** kbundle under umask 000, so the modes it promises are its own and not the umask's. */
function kbundleUmask0(a: string[]): RunResult {
  return sh('sh', ['-c', 'umask 000; exec "$@"', 'sh', process.execPath, BIN, ...a]);
}

describe.skipIf(!haveDkms)('default signing: same as dkms 3.0.10', () => {
  let kb: Scratch;
  let dk: Scratch;
  let kbRun: RunResult;
  let dkRun: RunResult;
  let dkmsKey: string;
  let dkmsCert: string;

  beforeAll(() => {
    kb = makeScratch([K1, K2]);
    addSource(kb, 'bundles/hello-1.0');
    kbRun = kbundleUmask0(['build', 'hello/1.0', '-k', K1, '-k', K2, ...args(kb)]);
    dk = makeScratch([K1]);
    addSource(dk, 'bundles/hello-1.0');
    dkRun = realDkms(dk, ['build', 'hello/1.0', '-k', K1]);
    // real-dkms.ts mounts <root>/real-dkms-var on /var/lib/dkms, where dkms 3.0.10 keeps its key.
    dkmsKey = join(dk.root, 'real-dkms-var/mok.key');
    dkmsCert = join(dk.root, 'real-dkms-var/mok.pub');
  });

  it('a build with no key creates <dkmstree>/mok.key and mok.pub as dkms creates its pair', () => {
    expect(kbRun.code, kbRun.stderr).toBe(0);
    expect(dkRun.code, dkRun.stderr).toBe(0);
    expect(dkRun.stdout).toContain(GENERATING);
    expect(kbRun.stdout).toContain(GENERATING);
    expect(kbRun.stdout.split(GENERATING).length - 1).toBe(1);

    const key = join(kb.dkmsTree, 'mok.key');
    const cert = join(kb.dkmsTree, 'mok.pub');
    expect(x509(cert, '-subject').stdout.trim()).toBe('subject=CN = DKMS module signing key');
    expect(x509(cert, '-subject').stdout).toBe(x509(dkmsCert, '-subject').stdout);
    expect(x509(cert, '-issuer').stdout).toBe(x509(dkmsCert, '-issuer').stdout);
    // DER, RSA-2048, 36500 days, the same extensions (no EKU in 3.0.10).
    expect(readFileSync(cert)[0]).toBe(0x30);
    expect(certShape(cert)).toBe(certShape(dkmsCert));
    expect(certShape(cert)).toContain('days=36500 bits=2048');
    expect(certShape(cert)).not.toContain('Extended Key Usage');
    expect(readFileSync(key, 'utf8').split('\n')[0]).toBe(readFileSync(dkmsKey, 'utf8').split('\n')[0]);
    expect(sh('openssl', ['pkey', '-in', key, '-noout', '-text']).stdout.split('\n')[0]).toBe(
      sh('openssl', ['pkey', '-in', dkmsKey, '-noout', '-text']).stdout.split('\n')[0],
    );
    // The key belongs to the certificate.
    const pub = (args: string[]) => sh('sh', ['-c', `openssl ${args.join(' ')} | sha256sum`]).stdout;
    expect(pub(['pkey', '-in', key, '-pubout'])).toBe(pub(['x509', '-inform', 'DER', '-in', cert, '-noout', '-pubkey']));
    // Modes as openssl leaves dkms's pair, here under umask 000.
    expect(mode(dkmsKey)).toBe(0o600);
    expect(mode(key)).toBe(0o600);
    expect(mode(cert)).toBe(0o644);
    // Nothing of the generation is left behind.
    expect(readdirSync(kb.dkmsTree).filter((n) => n.includes('kbundle-tmp'))).toEqual([]);
  });

  it('every module is signed with that key the way dkms signs its build', () => {
    const cert = join(kb.dkmsTree, 'mok.pub');
    const dkmsKo = helloKo(dk, K1);
    expect(modinfo(dkmsKo, 'signer')).toBe('DKMS module signing key');
    expect(modinfo(dkmsKo, 'sig_key').replace(/:/g, '')).toBe(serialOf(dkmsCert));
    for (const k of [K1, K2]) {
      const ko = helloKo(kb, k);
      expect(modinfo(ko, 'signer')).toBe(modinfo(dkmsKo, 'signer'));
      expect(modinfo(ko, 'sig_hashalgo')).toBe(modinfo(dkmsKo, 'sig_hashalgo'));
      expect(modinfo(ko, 'sig_id')).toBe(modinfo(dkmsKo, 'sig_id'));
      // Both kernels, built concurrently, carry the one generated key.
      expect(modinfo(ko, 'sig_key').replace(/:/g, '')).toBe(serialOf(cert));
      const ok = cmsVerify(ko, cert, kb.root);
      expect(ok.code, ok.stderr).toBe(0);
      expect(cmsVerify(ko, dkmsCert, kb.root).code).not.toBe(0);
    }
    const dv = cmsVerify(dkmsKo, dkmsCert, dk.root);
    expect(dv.code, dv.stderr).toBe(0);
  });

  it('the next build reuses the pair; a missing certificate regenerates both, as dkms does', () => {
    const key = join(kb.dkmsTree, 'mok.key');
    const cert = join(kb.dkmsTree, 'mok.pub');
    const keyBytes = readFileSync(key);
    const again = kbundle(['build', 'hello/1.0', '-k', K1, '--force', ...args(kb)]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).not.toContain(GENERATING);
    expect(readFileSync(key).equals(keyBytes)).toBe(true);
    expect(modinfo(helloKo(kb, K1), 'sig_key').replace(/:/g, '')).toBe(serialOf(cert));

    rmSync(cert);
    const regen = kbundle(['build', 'hello/1.0', '-k', K1, '--force', ...args(kb)]);
    expect(regen.code, regen.stderr).toBe(0);
    expect(regen.stdout).toContain(GENERATING);
    expect(readFileSync(key).equals(keyBytes)).toBe(false);
    expect(modinfo(helloKo(kb, K1), 'sig_key').replace(/:/g, '')).toBe(serialOf(cert));

    // dkms under the same condition.
    rmSync(dkmsCert);
    const dkmsKeyBytes = readFileSync(dkmsKey);
    expect(realDkms(dk, ['unbuild', 'hello/1.0', '-k', K1]).code).toBe(0);
    const d = realDkms(dk, ['build', 'hello/1.0', '-k', K1]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain(GENERATING);
    expect(readFileSync(dkmsKey).equals(dkmsKeyBytes)).toBe(false);
  });
});

describe.skipIf(!haveDkms)('framework.conf settings, as dkms 3.0.10 reads them', () => {
  it('mok_signing_key/mok_certificate naming missing files: generated there and used', () => {
    const kb = makeScratch([K1]);
    const dk = makeScratch([K1]);
    for (const s of [kb, dk]) {
      addSource(s, 'bundles/hello-1.0');
      writeFileSync(join(s.etcDir, 'framework.conf'), `mok_signing_key="${s.root}/keys/signing.key"\nmok_certificate="${s.root}/keys/signing.der"\n`);
      mkdirSync(join(s.root, 'keys'));
    }
    const r = kbundle(['build', 'hello/1.0', '-k', K1, ...args(kb)]);
    expect(r.code, r.stderr).toBe(0);
    const d = realDkms(dk, ['build', 'hello/1.0', '-k', K1]);
    expect(d.code, d.stderr).toBe(0);
    for (const s of [kb, dk]) {
      expect(readdirSync(join(s.root, 'keys')).sort()).toEqual(['signing.der', 'signing.key']);
      expect(modinfo(helloKo(s, K1), 'sig_key').replace(/:/g, '')).toBe(serialOf(join(s.root, 'keys/signing.der')));
    }
    expect(existsSync(join(kb.dkmsTree, 'mok.key'))).toBe(false);
    expect(existsSync(join(dk.root, 'real-dkms-var/mok.key'))).toBe(false);
    expect(certShape(join(kb.root, 'keys/signing.der'))).toBe(certShape(join(dk.root, 'keys/signing.der')));
    expect(mode(join(kb.root, 'keys/signing.key'))).toBe(0o600);
  });

  it('an existing configured pair is used as it is', () => {
    const s = makeScratch([K1]);
    addSource(s, 'bundles/hello-1.0');
    const key = join(s.root, 'own.key');
    const cert = join(s.root, 'own.der');
    const g = sh('openssl', ['req', '-new', '-x509', '-nodes', '-days', '30', '-subj', '/CN=Own signing key', '-newkey', 'rsa:2048', '-keyout', key, '-outform', 'DER', '-out', cert]);
    expect(g.code, g.stderr).toBe(0);
    const before = [readFileSync(key), readFileSync(cert)];
    writeFileSync(join(s.etcDir, 'framework.conf'), `mok_signing_key=${key}\nmok_certificate=${cert}\n`);
    const r = kbundle(['build', 'hello/1.0', '-k', K1, ...args(s)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain(GENERATING);
    expect(modinfo(helloKo(s, K1), 'signer')).toBe('Own signing key');
    expect(modinfo(helloKo(s, K1), 'sig_key').replace(/:/g, '')).toBe(serialOf(cert));
    expect(readFileSync(key).equals(before[0]!) && readFileSync(cert).equals(before[1]!)).toBe(true);
    expect(existsSync(join(s.dkmsTree, 'mok.key'))).toBe(false);
  });

  it('sign_file that is not an executable file: no key, unsigned modules, the same message as dkms', () => {
    const kb = makeScratch([K1]);
    const dk = makeScratch([K1]);
    const message = "Binary /nonexistent/sign-file not found, modules won't be signed";
    for (const s of [kb, dk]) {
      addSource(s, 'bundles/hello-1.0');
      writeFileSync(join(s.etcDir, 'framework.conf'), 'sign_file="/nonexistent/sign-file"\n');
    }
    const r = kbundle(['build', 'hello/1.0', '-k', K1, ...args(kb)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(message);
    const d = realDkms(dk, ['build', 'hello/1.0', '-k', K1]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain(message);
    expect(modinfo(helloKo(kb, K1), 'signer')).toBe('');
    expect(modinfo(helloKo(dk, K1), 'signer')).toBe('');
    expect(existsSync(join(kb.dkmsTree, 'mok.key'))).toBe(false);
    expect(existsSync(join(dk.root, 'real-dkms-var/mok.key'))).toBe(false);
  });
});

describe('resolveSigning', () => {
  const fakeKernel = (root: string, config: string) => {
    const dir = join(root, 'ksrc');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '.config'), config);
    return dir;
  };

  it('concurrent kernels of one run generate one pair and all sign with it', async () => {
    const s = makeScratch([]);
    const ksrc = fakeKernel(s.root, 'CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_HASH="sha256"\n');
    const said: string[] = [];
    const decisions = await Promise.all(
      Array.from({ length: 6 }, () => resolveSigning({ dkmsTree: s.dkmsTree, kernelSourceDir: ksrc, say: (l) => said.push(l) })),
    );
    expect(decisions.filter((d) => d.plan && d.generated)).toHaveLength(1);
    expect(said).toEqual([GENERATING]);
    for (const d of decisions) expect(d.plan).toEqual({ keyPath: join(s.dkmsTree, 'mok.key'), certPath: join(s.dkmsTree, 'mok.pub'), hash: 'sha256' });
    expect(await ensureMok(join(s.dkmsTree, 'mok.key'), join(s.dkmsTree, 'mok.pub'))).toBe(false);
  });

  it('a kernel without CONFIG_MODULE_SIG_HASH gets no signature and no key (the dkms >= 3.0.11 rule)', async () => {
    const s = makeScratch([]);
    const ksrc = fakeKernel(s.root, '# CONFIG_MODULE_SIG is not set\n');
    const d = await resolveSigning({ dkmsTree: s.dkmsTree, kernelSourceDir: ksrc });
    expect(d.plan).toBeNull();
    expect(d.plan === null && d.reason).toContain('CONFIG_MODULE_SIG_HASH');
    expect(readdirSync(s.dkmsTree)).toEqual([]);
  });

  it('a key that openssl cannot write: unsigned with dkms\'s message, not a failed build', async () => {
    const s = makeScratch([]);
    const ksrc = fakeKernel(s.root, 'CONFIG_MODULE_SIG_HASH="sha256"\n');
    const blocker = join(s.root, 'not-a-dir');
    writeFileSync(blocker, '');
    const d = await resolveSigning({ dkmsTree: s.dkmsTree, kernelSourceDir: ksrc, mokSigningKey: join(blocker, 'mok.key'), mokCertificate: join(blocker, 'mok.pub') });
    expect(d.plan).toBeNull();
    expect(d.plan === null && d.reason).toMatch(/^Key file .*not-a-dir\/mok\.key not found and can't be generated .*modules won't be signed$/);
  });
});

describe('version', () => {
  it('names kbundle and the dkms version it is compatible with, in dkms\'s <name>-<version> form', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const expected = `kbundle-${pkg.version} (compatible with dkms-3.0.10)\n`;
    for (const a of [['--version'], ['-V'], ['version']]) {
      const r = kbundle(a);
      expect(r.code, a.join(' ')).toBe(0);
      expect(r.stdout, a.join(' ')).toBe(expected);
    }
    if (haveDkms) expect(sh('/usr/sbin/dkms', ['--version']).stdout).toBe('dkms-3.0.10\n');
  });

  it('installed under the name dkms, the first line is exactly what dkms 3.0.10 prints', () => {
    const s = makeScratch([]);
    const link = join(s.root, 'bin/dkms');
    mkdirSync(join(s.root, 'bin'));
    symlinkSync(BIN, link);
    const r = sh(link, ['--version']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('dkms-3.0.10');
    if (haveDkms) expect(`${lines[0]}\n`).toBe(sh('/usr/sbin/dkms', ['--version']).stdout);
    expect(lines[1]).toMatch(/^kbundle-\d+\.\d+\.\d+\S* \(compatible with dkms-3\.0\.10\)$/);
  });
});

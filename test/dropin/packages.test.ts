// Real Debian *-dkms packages installed with dpkg, once with Debian's dkms and
// once with kbundle as /usr/sbin/dkms (`kbundle dropin install`), each in its
// own throwaway copy of the machine. At every step a user takes, both must
// show the same exit code, status lines, installed module files (bytes),
// depmod entries and DKMS tree entries.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { installedKernels } from '../helpers/kernels.js';
import { DROPIN, Sandbox, debFile, sandboxAvailable, type Run, type Snapshot } from './sandbox.js';

const available = sandboxAvailable();
const kernels = installedKernels();
/** A kernel the hooks are run for: the newest 6.1 one (bookworm's *-dkms sources build there). */
const hookKernel = kernels.filter((k) => k.startsWith('6.1.')).sort().pop();

interface Pair {
  dkms: Sandbox;
  kbundle: Sandbox;
}

const made: Sandbox[] = [];
/**
 * Both copies get one signing key pair, made as dkms 3.0.10 makes
 * /var/lib/dkms/mok.key and mok.pub; otherwise each would make its own and the
 * signatures, the only bytes that could then differ, would.
 */
let keyDir: string | undefined;
function sharedKey(): string {
  if (keyDir) return keyDir;
  keyDir = mkdtempSync('/var/tmp/kbundle-dropin-key-');
  execFileSync('openssl', ['req', '-new', '-x509', '-nodes', '-days', '36500', '-subj', '/CN=DKMS module signing key', '-newkey', 'rsa:2048',
    '-keyout', join(keyDir, 'mok.key'), '-outform', 'DER', '-out', join(keyDir, 'mok.pub')], { stdio: 'ignore' });
  return keyDir;
}

async function pair(label: string): Promise<Pair> {
  const dkms = new Sandbox(`${label}-dkms`);
  const kbundle = new Sandbox(`${label}-kbundle`);
  made.push(dkms, kbundle);
  const key = sharedKey();
  const seed = `mkdir -p /var/lib/dkms && install -m 600 ${key}/mok.key /var/lib/dkms/mok.key && install -m 644 ${key}/mok.pub /var/lib/dkms/mok.pub`;
  for (const [s, extra] of [[dkms, 'true'], [kbundle, DROPIN]] as const) {
    const r = await s.run(`${seed} && ${extra}`);
    expect(r.code, r.stderr).toBe(0);
  }
  return { dkms, kbundle };
}
afterAll(() => {
  if (process.env.KBUNDLE_KEEP_SANDBOX) return;
  for (const s of made) s.dispose();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

/** Runs one step in both copies (concurrently) and compares what the user sees afterwards. */
async function step(p: Pair, module: string, what: string, script: string): Promise<{ dkms: Run; kbundle: Run; snap: Snapshot }> {
  const [d, k] = await Promise.all([p.dkms.run(script), p.kbundle.run(script)]);
  const [ds, ks] = await Promise.all([p.dkms.snapshot(module), p.kbundle.snapshot(module)]);
  const context = `${what}\n--- dkms stdout/stderr:\n${d.stdout}\n${d.stderr}\n--- kbundle stdout/stderr:\n${k.stdout}\n${k.stderr}`;
  expect(k.code, context).toBe(d.code);
  expect(ks, context).toEqual(ds);
  return { dkms: d, kbundle: k, snap: ks };
}

const nothingLeft = (s: Snapshot) => {
  expect(s.status).toEqual([]);
  expect(s.files).toEqual([]);
  expect(s.modulesDep).toEqual([]);
  expect(s.tree).toEqual([]);
};

const PACKAGES: Array<{ pkg: string; module: string; modules: number }> = [
  { pkg: 'acpi-call-dkms', module: 'acpi-call', modules: 1 },
  { pkg: 'bbswitch-dkms', module: 'bbswitch', modules: 1 },
  // two modules (ddcci, ddcci-backlight) from one dkms.conf
  { pkg: 'ddcci-dkms', module: 'ddcci', modules: 2 },
];

describe.skipIf(!available || !hookKernel)('kbundle as dkms, with real *-dkms packages', () => {
  for (const { pkg, module, modules } of PACKAGES) {
    it(`${pkg}: install, kernel hooks, purge — as with dkms`, async () => {
      const p = await pair(pkg);
      const deb = debFile(pkg);
      const installed = await step(p, module, `dpkg -i ${pkg}`, `dpkg -i ${deb}`);
      // at least every 6.1 kernel (bookworm's sources; some fail on 6.12 with dkms too), each module known to depmod
      const count = installed.snap.status.filter((l) => l.endsWith(': installed')).length;
      expect(count).toBeGreaterThanOrEqual(kernels.filter((k) => k.startsWith('6.1.')).length);
      expect(installed.snap.modulesDep.length).toBe(count * modules);
      expect(installed.kbundle.stdout).toContain(`Building initial module for ${hookKernel}`);
      // Switching back: Debian's dkms reads the tree kbundle wrote and prints the same lines.
      const distrib = await p.kbundle.run('/usr/sbin/dkms.distrib status 2>/dev/null | sort');
      expect(distrib.stdout.split('\n').filter(Boolean)).toEqual(installed.snap.status);

      // A kernel going away and coming back: Debian's hooks call dkms status/remove and dkms_autoinstaller.
      const gone = await step(p, module, 'kernel prerm hook', `/etc/kernel/prerm.d/dkms ${hookKernel}`);
      expect(gone.snap.status.some((l) => l.includes(hookKernel!))).toBe(false);
      const back = await step(p, module, 'kernel postinst hook', `/etc/kernel/postinst.d/dkms ${hookKernel}`);
      expect(back.snap.status).toEqual(installed.snap.status);

      const purged = await step(p, module, `dpkg --purge ${pkg}`, `dpkg --purge ${pkg}`);
      nothingLeft(purged.snap);
    });
  }

  it('v4l2loopback-dkms: a kernel it cannot build for, the retry, purge, reinstall — as with dkms', async () => {
    const module = 'v4l2loopback';
    const p = await pair('v4l2loopback');
    const deb = debFile('v4l2loopback-dkms');
    const first = await step(p, module, 'dpkg -i (fails for one kernel)', `dpkg -i ${deb}`);
    const failing = kernels.filter((k) => !first.snap.status.some((l) => l.includes(`, ${k}, `)));
    if (failing.length) {
      // The package's postinst fails (dkms build's exit code), dpkg says so, the 6.1 kernels are installed.
      expect(first.kbundle.code).toBe(1);
      expect(first.kbundle.stderr).toContain('post-installation script subprocess returned error exit status 10');
      expect(first.kbundle.stderr).toContain(`/var/lib/dkms/${module}/`);
    }
    const retry = await step(p, module, 'dpkg --configure -a', 'dpkg --configure -a');
    expect(retry.snap.status).toEqual(first.snap.status);
    nothingLeft((await step(p, module, 'dpkg --purge', 'dpkg --purge v4l2loopback-dkms')).snap);
    const again = await step(p, module, 'dpkg -i after purge', `dpkg -i ${deb}`);
    expect(again.snap.status).toEqual(first.snap.status);
    nothingLeft((await step(p, module, 'dpkg --purge again', 'dpkg --purge v4l2loopback-dkms')).snap);
  });
});

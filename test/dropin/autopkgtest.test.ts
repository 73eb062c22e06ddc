// Debian's own CI test for *-dkms packages, /usr/lib/dkms/dkms-autopkgtest,
// run for real packages with Debian's dkms and with kbundle as dkms: it
// installs the package with apt, then per kernel runs `dkms build`,
// `dkms install --force` and checks `dkms status <m> -k <k>` ends in
// "installed". Both engines must give the same per-kernel summary and exit code.
import { afterAll, describe, expect, it } from 'vitest';
import { DROPIN, Sandbox, sandboxAvailable } from './sandbox.js';

const available = sandboxAvailable();
const made: Sandbox[] = [];
afterAll(() => {
  if (!process.env.KBUNDLE_KEEP_SANDBOX) for (const s of made) s.dispose();
});

const summary = (out: string) => out.split('\n').filter((l) => /^I: (PASS|FAIL|SKIP) /.test(l));

describe.skipIf(!available)('dkms-autopkgtest with kbundle as dkms', () => {
  for (const pkg of ['acpi-call-dkms', 'v4l2loopback-dkms']) {
    it(`${pkg}: same summary and exit code as with dkms`, async () => {
      const dkms = new Sandbox(`apt-${pkg}-dkms`);
      const kbundle = new Sandbox(`apt-${pkg}-kbundle`);
      made.push(dkms, kbundle);
      expect((await kbundle.run(DROPIN)).code).toBe(0);
      const script = `/usr/lib/dkms/dkms-autopkgtest ${pkg} 2>&1`;
      const [d, k] = await Promise.all([dkms.run(script), kbundle.run(script)]);
      const context = `--- dkms:\n${d.stdout}\n--- kbundle:\n${k.stdout}`;
      expect(summary(d.stdout).length, context).toBeGreaterThan(0);
      expect(summary(k.stdout), context).toEqual(summary(d.stdout));
      expect(k.code, context).toBe(d.code);
      // A failed kernel's log is printed from where dkms keeps it, with the compiler's error in it.
      if (summary(k.stdout).some((l) => l.startsWith('I: FAIL'))) {
        expect(k.stdout).toMatch(/========== \/var\/lib\/dkms\/\S+\/build\/make\.log ==========\n(?!====)/);
        // The log printed is the file itself (dkms-autopkgtest cats it; a missing file shows as cat's error).
        expect(k.stdout).not.toMatch(/^cat: .*No such file or directory/m);
      }
    });
  }
});

// dkms.conf files from real Debian *-dkms packages build unchanged.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { debianDkmsSource } from '../helpers/debian-dkms.js';
import { twoKernels } from '../helpers/kernels.js';
import { kbundle, makeScratch, sh } from '../helpers/scratch.js';

const [K1, K2] = twoKernels();
const K61 = [K1, K2].find((k) => k.startsWith('6.1.'))!;

function installedNames(dir: string): string[] {
  return readdirSync(dir).map((n) => n.replace(/\.ko(\.\w+)?$/, ''));
}

describe('real Debian dkms packages', () => {
  it('acpi-call-dkms builds and installs for both kernels from `add <path>`', async () => {
    const src = await debianDkmsSource('acpi-call-dkms');
    const s = makeScratch([K1, K2]);
    const args = [...s.treeArgs, '--etcdir', s.etcDir];
    const add = kbundle(['add', src, ...args]);
    expect(add.code, add.stderr).toBe(0);
    const r = kbundle(['install', 'acpi-call/1.2.2', '-k', K1, '-k', K2, ...args]);
    expect(r.code, r.stderr).toBe(0);
    for (const k of [K1, K2]) {
      expect(installedNames(join(s.installTree, k, 'updates/dkms'))).toEqual(['acpi_call']);
      const f = readdirSync(join(s.installTree, k, 'updates/dkms'))[0]!;
      expect(sh('modinfo', ['-F', 'vermagic', join(s.installTree, k, 'updates/dkms', f)]).stdout.startsWith(`${k} `)).toBe(true);
    }
    expect(kbundle(['status', ...args]).stdout.trim().split('\n')).toEqual(
      [`acpi-call/1.2.2, ${K1}, x86_64: installed`, `acpi-call/1.2.2, ${K2}, x86_64: installed`].sort(),
    );
  });

  it('v4l2loopback-dkms and ddcci-dkms (shell logic in dkms.conf) build for 6.1', async () => {
    const s = makeScratch([K61]);
    const args = [...s.treeArgs, '--etcdir', s.etcDir];
    for (const [pkg, mv, mods] of [
      ['v4l2loopback-dkms', 'v4l2loopback/0.12.7', ['v4l2loopback']],
      ['ddcci-dkms', 'ddcci/0.4.2', ['ddcci', 'ddcci-backlight']],
    ] as const) {
      expect(kbundle(['add', await debianDkmsSource(pkg), ...args]).code).toBe(0);
      const r = kbundle(['build', mv, '-k', K61, ...args]);
      expect(r.code, `${pkg}: ${r.stderr}`).toBe(0);
      const dir = join(s.dkmsTree, mv, K61, 'x86_64', 'module');
      expect(installedNames(dir).filter((n) => n !== 'Module.symvers').sort()).toEqual([...mods].sort());
    }
  });
});

// The pure parts of kbundle's common.postinst: which kernels Debian's script
// builds for and the lines it prints, and dpkg's version order (checked
// against the real `dpkg --compare-versions`).
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compareDebianVersions } from '../../src/dropin/debian-version.js';
import { buildingForLine, chooseKernels, newestKernel, versionSort } from '../../src/dropin/kernels.js';
import { Rng } from '../helpers/prng.js';

const dpkgSays = (a: string, op: 'lt' | 'eq' | 'gt', b: string): boolean => {
  try {
    execFileSync('dpkg', ['--compare-versions', a, op, b]);
    return true;
  } catch {
    return false;
  }
};

describe('compareDebianVersions', () => {
  it('orders as dpkg --compare-versions does (fixed cases and 100 seeded random pairs)', () => {
    const fixed = ['6.1.0-55', '6.1.0-56', '6.12.117+deb12-amd64', '6.12.117+deb12', '1.0~rc1', '1.0', '1.0-1', '1:0.9', '1.0a', '1.0+b1', '6.1.0-9', '6.1.0-10', '2.0~~', '2.0~'];
    const rng = new Rng(20261201);
    const part = () => rng.pick(['0', '1', '9', '10', '6.1', '6.12', 'a', '~', '+', '.', '~rc', 'deb12']);
    const random = Array.from({ length: 100 }, () => `${1 + rng.int(9)}${part()}${part()}-${rng.int(20)}${part()}`);
    const all = [...fixed, ...random];
    for (let i = 0; i < all.length - 1; i++) {
      const [a, b] = [all[i]!, all[i + 1]!];
      const ours = Math.sign(compareDebianVersions(a, b));
      const theirs = dpkgSays(a, 'lt', b) ? -1 : dpkgSays(a, 'gt', b) ? 1 : 0;
      expect(ours, `${a} vs ${b}`).toBe(theirs);
    }
  });
});

describe('kernel choice', () => {
  const installed = ['6.12.117+deb12-amd64', '6.1.0-56-amd64', '6.1.0-55-amd64'];
  it('sorts like ls -v', () => {
    expect(versionSort(installed)).toEqual(['6.1.0-55-amd64', '6.1.0-56-amd64', '6.12.117+deb12-amd64']);
    expect(versionSort(['6.1.0-10-amd64', '6.1.0-9-amd64'])).toEqual(['6.1.0-9-amd64', '6.1.0-10-amd64']);
  });

  it('finds the newest /boot/config kernel at least as new as the running one', () => {
    expect(newestKernel(['6.1.0-55-amd64', '6.1.0-56-amd64', '6.12.117+deb12-amd64'], '6.1.0-55-amd64')).toBe('6.12.117+deb12-amd64');
    expect(newestKernel(['6.1.0-55-amd64'], '6.1.0-56-amd64')).toBe('');
  });

  it('in a chroot (running kernel not installed): all kernels on a first install, the newest on an upgrade', () => {
    const first = chooseKernels({ installed, current: '6.18.44-host', newest: '', allKernels: false, upgrade: false });
    expect(first.kernels).toEqual(['6.1.0-55-amd64', '6.1.0-56-amd64', '6.12.117+deb12-amd64']);
    expect(first.notes).toEqual(["It is likely that 6.18.44-host belongs to a chroot's host"]);
    expect(buildingForLine(first)).toBe('Building for 6.1.0-55-amd64, 6.1.0-56-amd64 and 6.12.117+deb12-amd64');
    const upgrade = chooseKernels({ installed, current: '6.18.44-host', newest: '6.12.117+deb12-amd64', allKernels: false, upgrade: true });
    expect(upgrade.kernels).toEqual(['6.12.117+deb12-amd64']);
  });

  it('on the machine itself: the running kernel and the newest; autoinstall_all_kernels: all', () => {
    const c = chooseKernels({ installed, current: '6.1.0-55-amd64', newest: '6.12.117+deb12-amd64', allKernels: false, upgrade: false });
    expect(c.kernels).toEqual(['6.1.0-55-amd64', '6.12.117+deb12-amd64']);
    expect(buildingForLine(c)).toBe('Building for 6.1.0-55-amd64 6.12.117+deb12-amd64');
    expect(buildingForLine(chooseKernels({ installed, current: '6.1.0-55-amd64', newest: '', allKernels: false, upgrade: false }))).toBe('Building for 6.1.0-55-amd64');
    expect(chooseKernels({ installed, current: '6.1.0-55-amd64', newest: '', allKernels: true, upgrade: false }).kernels).toHaveLength(3);
  });

  it('prints "Building for" exactly as the script\'s tr/sed pipeline does', () => {
    for (const kernels of [['a'], ['a', 'b'], ['a', 'b', 'c']]) {
      const viaShell = execFileSync('sh', ['-c', `echo "Building for $K" | tr '\\n' ',' | sed -e 's/,/, /g; s/, $/\\n/; s/, \\([^,]\\+\\)$/ and \\1/'`], {
        env: { ...process.env, K: kernels.join('\n') },
        encoding: 'utf8',
      });
      expect(buildingForLine({ kernels, listed: true, notes: [] })).toBe(viaShell.replace(/\n$/, ''));
    }
  });
});

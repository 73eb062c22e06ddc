// stripDebug() is binutils' strip -g, refused on signed modules.
import { copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { execa } from 'execa';
import { buildHelloModule } from '../helpers/hello-module.js';
import { twoKernels } from '../helpers/kernels.js';
import { stripDebug } from '../../src/kmod/strip.js';
import { readModinfo } from '../../src/elf/modinfo.js';
import { readVersions } from '../../src/elf/versions.js';
import { signModule } from '../../src/sign/sign-module.js';
import { generateMok } from '../../src/sign/keys.js';

describe('stripDebug', () => {
  test('removes debug sections, keeps .modinfo and __versions, matches strip -g byte for byte', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kbstrip-'));
    const src = await buildHelloModule(twoKernels()[0]);
    const ours = join(dir, 'a.ko');
    const theirs = join(dir, 'b.ko');
    copyFileSync(src, ours);
    copyFileSync(src, theirs);
    await stripDebug(ours);
    await execa('strip', ['-g', theirs]);
    expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
    expect(statSync(ours).size).toBeLessThan(statSync(src).size);
    expect(String((await execa('readelf', ['-SW', src])).stdout)).toContain('.debug_info');
    expect(String((await execa('readelf', ['-SW', ours])).stdout)).not.toContain('.debug_');
    expect(readModinfo(readFileSync(ours))).toEqual(readModinfo(readFileSync(src)));
    expect(readVersions(readFileSync(ours))).toEqual(readVersions(readFileSync(src)));
  });

  test('refuses a signed module (stripping would drop the signature)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kbstrip-'));
    await generateMok(join(dir, 'k'), join(dir, 'c'));
    const signed = await signModule(readFileSync(await buildHelloModule(twoKernels()[0])), { key: join(dir, 'k'), cert: readFileSync(join(dir, 'c')), hash: 'sha256' });
    const p = join(dir, 's.ko');
    writeFileSync(p, signed);
    await expect(stripDebug(p)).rejects.toThrow(/is signed/);
    expect(readFileSync(p).equals(signed)).toBe(true);
  });
});

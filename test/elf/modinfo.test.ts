// Our .modinfo reader against kmod's modinfo on real modules and real ELF variants.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { buildHelloModule, HELLO_NAME, HELLO_VERSION } from '../helpers/hello-module.js';
import { installedKernels, twoKernels } from '../helpers/kernels.js';
import { depends, license, moduleName, modinfoField, readModinfo, srcversion, vermagic, vermagicRelease, version } from '../../src/elf/modinfo.js';
import { parseElf } from '../../src/elf/elf-file.js';
import { readModule } from '../../src/kmod/compression.js';
import { signModule } from '../../src/sign/sign-module.js';
import { generateMok } from '../../src/sign/keys.js';
import { KbundleError } from '../../src/util/errors.js';
import { modinfoF, objcopyElf, out, tempDir } from './tools.js';

// kmod merges parm and parmtype into one `parm` line and adds filename/sig_* itself.
const NOT_RAW = new Set(['parm', 'parmtype']);

async function expectSameAsModinfo(path: string, elf: Buffer): Promise<number> {
  const entries = readModinfo(elf);
  const keys = [...new Set(entries.map(([k]) => k))].filter((k) => !NOT_RAW.has(k));
  expect(keys.length).toBeGreaterThan(3);
  for (const key of keys) expect(modinfoField(entries, key), key).toEqual(await modinfoF(path, key));
  return keys.length;
}

describe.each(twoKernels())('hello module built for %s', (k) => {
  let ko: string;
  let elf: Buffer;
  beforeAll(async () => {
    ko = await buildHelloModule(k);
    elf = readFileSync(ko);
  });

  test('every field equals modinfo -F', async () => {
    await expectSameAsModinfo(ko, elf);
  });

  test('helpers', async () => {
    const vm = vermagic(elf)!;
    expect(vm).toMatch(new RegExp(`^${k.replace(/[.+]/g, '\\$&')} SMP .*modversions $`));
    expect(vermagicRelease(elf)).toBe(k);
    expect(moduleName(elf)).toBe(HELLO_NAME);
    expect(version(elf)).toBe(HELLO_VERSION);
    expect(license(elf)).toBe('GPL');
    expect(srcversion(elf)).toMatch(/^[0-9A-F]{23}$/);
    expect([srcversion(elf)]).toEqual(await modinfoF(ko, 'srcversion'));
    expect(depends(elf)).toEqual([]);
    expect(modinfoField(elf, 'parmtype')).toEqual(['count:int']);
    expect(modinfoField(elf, 'parm')).toEqual(['count:how many greetings']);
  });

  test('a signature trailer does not change what is read', async () => {
    const dir = tempDir();
    await generateMok(join(dir, 'k'), join(dir, 'c'));
    const signed = await signModule(elf, { key: join(dir, 'k'), cert: readFileSync(join(dir, 'c')), hash: 'sha256' });
    expect(readModinfo(signed)).toEqual(readModinfo(elf));
    expect(parseElf(signed).image.length).toBe(elf.length);
  });
});

// Real distribution modules: many aliases, depends lists, firmware, signatures.
const realKernel = installedKernels().find((k) => {
  try {
    return readdirSync(`/lib/modules/${k}/kernel/drivers/net`).some((n) => n.startsWith('virtio_net.ko'));
  } catch {
    return false;
  }
});

describe.skipIf(!realKernel)('Debian in-tree modules', () => {
  test.each(['virtio_net', 'dummy'])('%s: every field equals modinfo -F', async (m) => {
    const dir = `/lib/modules/${realKernel}/kernel/drivers/net`;
    const path = join(dir, readdirSync(dir).find((n) => n.startsWith(`${m}.ko`))!);
    const elf = await readModule(path);
    await expectSameAsModinfo(path, elf);
    const dep = (await modinfoF(path, 'depends'))[0] ?? '';
    expect(depends(elf)).toEqual(dep.split(',').filter(Boolean));
    if (m === 'virtio_net') expect(depends(elf).length).toBeGreaterThan(0);
  });
});

describe('ELF classes and byte orders (objects made by objcopy)', () => {
  const data = Buffer.from('license=GPL\0\0name=x\0depends=a,b\0alias=one\0alias=two\0vermagic=6.1.0 SMP mod_unload \0flag\0', 'latin1');
  test.each(['elf32-big', 'elf64-big', 'elf32-little', 'elf64-little'])('%s', async (target) => {
    const ko = await objcopyElf(tempDir(), target, '.modinfo', data);
    const elf = readFileSync(ko);
    expect(parseElf(elf).header.elfClass).toBe(target.includes('32') ? 32 : 64);
    expect(parseElf(elf).header.endian).toBe(target.endsWith('big') ? 'be' : 'le');
    expect(readModinfo(elf)).toEqual([
      ['license', 'GPL'],
      ['name', 'x'],
      ['depends', 'a,b'],
      ['alias', 'one'],
      ['alias', 'two'],
      ['vermagic', '6.1.0 SMP mod_unload '],
      ['flag', ''],
    ]);
    expect(depends(elf)).toEqual(['a', 'b']);
    for (const f of ['license', 'alias', 'vermagic', 'depends']) expect(modinfoField(elf, f), f).toEqual(await modinfoF(ko, f));
  });
});

describe('malformed input', () => {
  let elf: Buffer;
  beforeAll(async () => {
    elf = readFileSync(await buildHelloModule(twoKernels()[0]));
  });

  test('non-ELF and truncated files give KbundleError, never a RangeError', () => {
    expect(() => readModinfo(Buffer.from('hello world'))).toThrow(/not an ELF/);
    for (const len of [8, 20, 63, elf.length >> 1, elf.length - 1]) {
      expect(() => readModinfo(elf.subarray(0, len)), `length ${len}`).toThrow(KbundleError);
    }
  });

  test('a section header pointing past the end is caught', () => {
    const bad = Buffer.from(elf);
    const e = parseElf(bad);
    const mi = e.sections.find((s) => s.name === '.modinfo')!;
    // sh_offset of .modinfo in the Elf64_Shdr (x86-64 is ELF64 LE).
    bad.writeBigUInt64LE(BigInt(bad.length), e.header.shoff + mi.index * e.header.shentsize + 24);
    expect(() => readModinfo(bad)).toThrow(/past end/);
  });

  test('an ELF without .modinfo reads as empty (readelf agrees there is none)', async () => {
    const dir = tempDir();
    const p = await objcopyElf(dir, 'elf64-little', '.comment', Buffer.from('license=GPL\0'));
    expect(await out('readelf', ['-SW', p])).not.toContain('.modinfo');
    expect(readModinfo(readFileSync(p))).toEqual([]);
    writeFileSync(join(dir, 'empty'), '');
    expect(() => readModinfo(readFileSync(join(dir, 'empty')))).toThrow(KbundleError);
  });
});

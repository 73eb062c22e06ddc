// __versions against modprobe --dump-modversions.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { buildHelloModule } from '../helpers/hello-module.js';
import { installedKernels, twoKernels } from '../helpers/kernels.js';
import { formatCrc, readVersions } from '../../src/elf/versions.js';
import { readModule } from '../../src/kmod/compression.js';
import { dumpModversions, objcopyElf, tempDir } from './tools.js';

const asDump = (v: { symbol: string; crc: number }[]) => v.map((e) => `${formatCrc(e.crc)}\t${e.symbol}`);

describe.each(twoKernels())('hello module built for %s', (k) => {
  test('same symbols, order and CRCs as modprobe --dump-modversions', async () => {
    const ko = await buildHelloModule(k);
    const v = readVersions(readFileSync(ko));
    expect(v.map((e) => e.symbol)).toContain('_printk');
    expect(asDump(v)).toEqual(await dumpModversions(ko));
  });
});

const realKernel = installedKernels().find((k) => {
  try {
    return readdirSync(`/lib/modules/${k}/kernel/drivers/net`).some((n) => n.startsWith('virtio_net.ko'));
  } catch {
    return false;
  }
});

test.skipIf(!realKernel)('a signed, compressed Debian module (virtio_net) matches modprobe', async () => {
  const dir = `/lib/modules/${realKernel}/kernel/drivers/net`;
  const path = join(dir, readdirSync(dir).find((n) => n.startsWith('virtio_net.ko'))!);
  const v = readVersions(await readModule(path));
  expect(v.length).toBeGreaterThan(100);
  expect(asDump(v)).toEqual(await dumpModversions(path));
});

describe('32-bit and big-endian layouts (objects made by objcopy)', () => {
  const syms: [number, string][] = [
    [0x12345678, 'foo'],
    [0xdeadbeef, 'bar_sym'],
    [0x00000001, 'x'.repeat(55)],
  ];
  function records(longSize: 4 | 8, be: boolean): Buffer {
    return Buffer.concat(
      syms.map(([crc, name]) => {
        const r = Buffer.alloc(64);
        if (longSize === 8) be ? r.writeBigUInt64BE(BigInt(crc)) : r.writeBigUInt64LE(BigInt(crc));
        else be ? r.writeUInt32BE(crc) : r.writeUInt32LE(crc);
        r.write(name, longSize, 'latin1');
        return r;
      }),
    );
  }
  test.each([
    ['elf32-big', 4, true],
    ['elf64-big', 8, true],
    ['elf32-little', 4, false],
    ['elf64-little', 8, false],
  ] as const)('%s', async (target, longSize, be) => {
    const ko = await objcopyElf(tempDir(), target, '__versions', records(longSize, be));
    const v = readVersions(readFileSync(ko));
    expect(v).toEqual(syms.map(([crc, symbol]) => ({ crc, symbol })));
    expect(asDump(v)).toEqual(await dumpModversions(ko));
  });

  test('a section that is not a whole number of records is rejected', async () => {
    const ko = await objcopyElf(tempDir(), 'elf64-little', '__versions', Buffer.alloc(65));
    expect(() => readVersions(readFileSync(ko))).toThrow(/multiple of 64/);
  });
});

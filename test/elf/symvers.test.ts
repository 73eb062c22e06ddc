// Module.symvers parsing, checked against the CRCs modpost put into a real module.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { execa } from 'execa';
import { buildHelloModule } from '../helpers/hello-module.js';
import { twoKernels } from '../helpers/kernels.js';
import { parseSymvers, readSymversFile } from '../../src/elf/symvers.js';
import { KbundleError } from '../../src/util/errors.js';
import { dumpModversions, tempDir } from './tools.js';

describe.each(twoKernels())('Module.symvers of %s', (k) => {
  const path = `/lib/modules/${k}/build/Module.symvers`;

  test('every CRC modprobe dumps from a module built against it equals the symvers entry', async () => {
    const symvers = await readSymversFile(path);
    const dumped = await dumpModversions(await buildHelloModule(k));
    expect(dumped.length).toBeGreaterThan(2);
    for (const line of dumped) {
      const [crc, sym] = line.split('\t') as [string, string];
      expect(symvers.get(sym), sym).toMatchObject({ crc: parseInt(crc, 16), module: 'vmlinux' });
    }
    expect(symvers.get('_printk')).toMatchObject({ exportType: 'EXPORT_SYMBOL', namespace: '' });
  });

  test('entry count and every field agree with a plain awk split', async () => {
    const text = readFileSync(path, 'utf8');
    const symvers = parseSymvers(text);
    const lines = text.split('\n').filter(Boolean);
    expect(symvers.size).toBe(new Set(lines.map((l) => l.split('\t')[1])).size);
    const namespaced = lines.filter((l) => (l.split('\t')[4] ?? '') !== '');
    expect(namespaced.length).toBeGreaterThan(0);
    for (const l of [...namespaced.slice(0, 50), ...lines.slice(0, 50)]) {
      const [crc, sym, module, exportType, namespace] = l.split('\t');
      expect(symvers.get(sym!)).toEqual({ crc: parseInt(crc!, 16), module, exportType, namespace: namespace ?? '' });
    }
  });
});

test('gzip- and xz-compressed copies read the same as the plain file', async () => {
  const [k] = twoKernels();
  const path = `/lib/modules/${k}/build/Module.symvers`;
  const dir = tempDir();
  const plain = await readSymversFile(path);
  for (const [tool, ext] of [['gzip', 'gz'], ['xz', 'xz']] as const) {
    const r = await execa(tool, ['-c', path], { encoding: 'buffer', stripFinalNewline: false });
    const p = join(dir, `symvers.${ext}`);
    writeFileSync(p, r.stdout);
    const m = await readSymversFile(p);
    expect(m.size).toBe(plain.size);
    expect([...m]).toEqual([...plain]);
  }
});

describe('older layouts', () => {
  test('5.4 (namespace third, only when set) and pre-5.4 (four columns)', () => {
    const m = parseSymvers(
      ['0x0000abcd\tns_sym\tUSB_STORAGE\tdrivers/usb/storage/usb-storage\tEXPORT_SYMBOL_GPL', '0x00001234\told_sym\tvmlinux\tEXPORT_SYMBOL', ''].join('\n'),
    );
    expect(m.get('ns_sym')).toEqual({ crc: 0xabcd, module: 'drivers/usb/storage/usb-storage', exportType: 'EXPORT_SYMBOL_GPL', namespace: 'USB_STORAGE' });
    expect(m.get('old_sym')).toEqual({ crc: 0x1234, module: 'vmlinux', exportType: 'EXPORT_SYMBOL', namespace: '' });
  });

  test('malformed lines name the line number', () => {
    expect(() => parseSymvers('0x1\ta\tvmlinux\tEXPORT_SYMBOL\t\nzz\tb\tvmlinux\tEXPORT_SYMBOL\t\n')).toThrow(/:2: bad CRC/);
    expect(() => parseSymvers('0x1\ta\tvmlinux\n')).toThrow(KbundleError);
    expect(() => parseSymvers('0x1\ta\tvmlinux\tFOO\tBAR\n')).toThrow(/no EXPORT_/);
  });
});

// Compression detection and module compression, checked with kmod, xz and zstd.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { execa, execaSync } from 'execa';
import { buildHelloModule } from '../helpers/hello-module.js';
import { installedKernels, twoKernels } from '../helpers/kernels.js';
import {
  compressModule,
  detectKernelCompression,
  moduleCompressionOf,
  moduleFileName,
  readModule,
  stripModuleExt,
  type ModuleSuffix,
} from '../../src/kmod/compression.js';
import { signModule } from '../../src/sign/sign-module.js';
import { certificateInfo, generateMok } from '../../src/sign/keys.js';
import { verifyModuleSignature } from '../../src/sign/verify-module.js';
import { readModinfo } from '../../src/elf/modinfo.js';
import { KbundleError } from '../../src/util/errors.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'kbkmod-'));
const touch = (p: string) => {
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, '');
};
// Debian 12's kmod 30 is built without zlib ("-ZLIB"), so its modinfo cannot open .ko.gz at all.
const kmodFeatures = String(execaSync('/usr/sbin/modinfo', ['--version']).stdout);
const kmodReads = (ext: string) => ext !== '.gz' || !kmodFeatures.includes('-ZLIB');
const modinfoF = async (p: string, f: string) => String((await execa('/usr/sbin/modinfo', ['-F', f, p])).stdout);

describe('detectKernelCompression on a fake install tree', () => {
  test('follows the existing modules, zst over xz over gz, nothing → ""', async () => {
    const tree = tempDir();
    const k = '9.9.9-test';
    expect(await detectKernelCompression(tree, k)).toBe(''); // missing directory
    mkdirSync(join(tree, k, 'kernel'), { recursive: true });
    touch(join(tree, k, 'kernel/plain.ko'));
    expect(await detectKernelCompression(tree, k)).toBe('');
    touch(join(tree, k, 'kernel/drivers/foo.ko.gz'));
    expect(await detectKernelCompression(tree, k)).toBe('.gz');
    touch(join(tree, k, 'kernel/foo.ko.xz'));
    expect(await detectKernelCompression(tree, k)).toBe('.xz');
    touch(join(tree, k, 'updates/dkms/deep/er/bar.ko.zst'));
    expect(await detectKernelCompression(tree, k)).toBe('.zst');
  });

  test('ignores look-alikes and does not follow symlinks (build/, source/)', async () => {
    const tree = tempDir();
    const k = '9.9.9-test';
    touch(join(tree, k, 'kernel/foo.ko.xz'));
    touch(join(tree, k, 'kernel/notes.ko.xz.txt'));
    touch(join(tree, k, 'kernel/x.kox.zst'));
    const elsewhere = tempDir();
    touch(join(elsewhere, 'sub/evil.ko.zst'));
    symlinkSync(elsewhere, join(tree, k, 'build'));
    expect(await detectKernelCompression(tree, k)).toBe('.xz');
  });
});

describe('detectKernelCompression on /lib/modules (read-only)', () => {
  const kernels = installedKernels();
  const withModules = kernels.find((k) => existsSync(`/lib/modules/${k}/kernel`));
  const withoutModules = kernels.find((k) => !existsSync(`/lib/modules/${k}/kernel`));

  test.skipIf(!withModules)('a Debian 6.12 tree uses .xz', async () => {
    const { stdout } = await execa('sh', ['-c', `find /lib/modules/${withModules}/ -name '*.ko.*' | sed 's/.*\\.ko//' | sort -u`]);
    const expected = stdout.includes('.zst') ? '.zst' : stdout.includes('.xz') ? '.xz' : stdout.includes('.gz') ? '.gz' : '';
    const t0 = performance.now();
    expect(await detectKernelCompression('/lib/modules', withModules!)).toBe(expected);
    console.log(`detectKernelCompression(/lib/modules, ${withModules}): ${(performance.now() - t0).toFixed(1)} ms (full walk, no .zst)`);
    expect(expected).toBe('.xz');
  });

  test.skipIf(!withoutModules)('a headers-only tree is uncompressed', async () => {
    expect(await detectKernelCompression('/lib/modules', withoutModules!)).toBe('');
  });
});

describe('compressModule', () => {
  let dir: string;
  let signed: Buffer;
  let cert: Buffer;
  beforeAll(async () => {
    dir = tempDir();
    await generateMok(join(dir, 'mok.key'), join(dir, 'mok.pub'));
    cert = readFileSync(join(dir, 'mok.pub'));
    signed = await signModule(readFileSync(await buildHelloModule(twoKernels()[0])), { key: join(dir, 'mok.key'), cert, hash: 'sha256' });
  });

  const exts: Exclude<ModuleSuffix, ''>[] = ['.xz', '.zst', '.gz'];
  test.each(exts)('%s: replaces the .ko, keeps the signature readable by modinfo, decompresses to the same bytes, deterministic', async (ext) => {
    const sub = mkdtempSync(join(dir, 'c-'));
    const ko = join(sub, 'kbhello.ko');
    writeFileSync(ko, signed);
    const out = await compressModule(ko, ext);
    expect(out).toBe(`${ko}${ext}`);
    expect(existsSync(ko)).toBe(false);
    if (kmodReads(ext)) {
      expect(await modinfoF(out, 'signer')).toBe(certificateInfo(cert).issuerCN);
      expect(await modinfoF(out, 'name')).toBe('kbhello');
    } else {
      console.warn(`kmod here lacks zlib (${kmodFeatures.trim().split('\n').pop()}): modinfo check of ${ext} skipped`);
    }
    expect((await readModule(out)).equals(signed)).toBe(true);
    expect((await verifyModuleSignature(await readModule(out), cert)).valid).toBe(true);
    const tool = { '.xz': 'xz', '.zst': 'zstd', '.gz': 'gzip' }[ext];
    const viaTool = await execa(tool, ['-dc', out], { encoding: 'buffer', stripFinalNewline: false });
    expect(Buffer.from(viaTool.stdout).equals(signed)).toBe(true);

    const again = join(mkdtempSync(join(dir, 'd-')), 'other-name.ko');
    writeFileSync(again, signed);
    expect(readFileSync(await compressModule(again, ext)).equals(readFileSync(out))).toBe(true);
  });

  test('.xz uses a CRC32 check, which the in-kernel xz decoder requires', async () => {
    const ko = join(mkdtempSync(join(dir, 'x-')), 'm.ko');
    writeFileSync(ko, signed);
    const { stdout } = await execa('xz', ['--robot', '-lv', await compressModule(ko, '.xz')]);
    expect(stdout).toMatch(/^file\t.*\tCRC32\t/m);
  });

  test('"" leaves the module alone; bad input is a KbundleError', async () => {
    const ko = join(mkdtempSync(join(dir, 'n-')), 'm.ko');
    writeFileSync(ko, signed);
    expect(await compressModule(ko, '')).toBe(ko);
    expect(readFileSync(ko).equals(signed)).toBe(true);
    await expect(compressModule(`${ko}.xz`, '.xz')).rejects.toThrow(/only uncompressed/);
    await expect(compressModule(join(dir, 'missing.ko'), '.xz')).rejects.toBeInstanceOf(KbundleError);
  });
});

describe('readModule', () => {
  test('reads a real Debian .ko.xz into an ELF that modinfo agrees with', async () => {
    const k = installedKernels().find((x) => existsSync(`/lib/modules/${x}/kernel/drivers/net/dummy.ko.xz`));
    if (!k) return expect.fail('no kernel with kernel/drivers/net/dummy.ko.xz installed');
    const p = `/lib/modules/${k}/kernel/drivers/net/dummy.ko.xz`;
    const elf = await readModule(p);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(readModinfo(elf).find(([key]) => key === 'vermagic')?.[1]).toBe(await modinfoF(p, 'vermagic'));
  });

  test('rejects compressed data that is not a module', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'x.ko.gz'), (await execa('gzip', ['-c'], { input: 'not an elf', encoding: 'buffer' })).stdout);
    await expect(readModule(join(dir, 'x.ko.gz'))).rejects.toThrow(/not a kernel module/);
    writeFileSync(join(dir, 'y.ko.xz'), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]));
    await expect(readModule(join(dir, 'y.ko.xz'))).rejects.toThrow(/cannot decompress/);
  });

  test('detects the format by content, not by name', async () => {
    const dir = tempDir();
    const src = await buildHelloModule(twoKernels()[0]);
    const p = join(dir, 'm.ko');
    copyFileSync(src, p);
    const zst = await compressModule(p, '.zst');
    copyFileSync(zst, join(dir, 'mislabelled.ko.xz'));
    expect((await readModule(join(dir, 'mislabelled.ko.xz'))).equals(readFileSync(src))).toBe(true);
  });
});

describe('module file names', () => {
  test.each([
    ['foo', '', 'foo.ko'],
    ['foo', '.gz', 'foo.ko.gz'],
    ['foo-bar_baz', '.xz', 'foo-bar_baz.ko.xz'],
    ['foo', '.zst', 'foo.ko.zst'],
  ] as const)('%s + "%s" ↔ %s', (name, ext, file) => {
    expect(moduleFileName(name, ext)).toBe(file);
    expect(stripModuleExt(file)).toBe(name);
    expect(moduleCompressionOf(file)).toBe(ext);
  });
  test('non-module names', () => {
    expect(stripModuleExt('foo.ko.bz2')).toBe('foo.ko.bz2');
    expect(stripModuleExt('foo.o')).toBe('foo.o');
    expect(moduleCompressionOf('foo.ko.bz2')).toBeNull();
  });
});

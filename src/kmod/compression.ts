/**
 * Module compression as DKMS does it (docs/dkms-compat.md, "Module compression"): the suffix
 * follows the modules the target kernel already has, and the commands are
 * DKMS 3.1.2+'s, pinned where the tool's default would make the bytes depend
 * on the host (see compressionCommand()).
 */
import { opendir, access } from 'node:fs/promises';
import { join } from 'node:path';
import { loadExeca } from '../util/execa.js';
import { KbundleError } from '../util/errors.js';
import { readFileOrFail } from '../util/fs.js';
import { decompress } from './decompress.js';
import { isElf } from '../elf/elf-file.js';

/**
 * How a module file's bytes are compressed: the one name for it, as bundles
 * record it (TargetModule.compression) and as the writer detects it by magic
 * bytes.
 */
export type CompressionFormat = 'none' | 'gzip' | 'xz' | 'zstd';

/**
 * The suffix after `.ko` that names a CompressionFormat in a module's file
 * name, as DKMS and kmod spell it ('' for none): what the kernel's module tree
 * uses, so the installer and the build pipeline work in suffixes.
 */
export type ModuleSuffix = '' | '.gz' | '.xz' | '.zst';

/** The suffix for each format. */
export const MODULE_SUFFIX: Readonly<Record<CompressionFormat, ModuleSuffix>> = { none: '', gzip: '.gz', xz: '.xz', zstd: '.zst' };

export const MODULE_COMPRESSIONS: readonly ModuleSuffix[] = ['', '.gz', '.xz', '.zst'];

/** DKMS tests gz, then xz, then zst and keeps the last hit, so zst wins over xz over gz. */
const PRECEDENCE: readonly ModuleSuffix[] = ['.gz', '.xz', '.zst'];

function compressedSuffix(name: string): ModuleSuffix | null {
  for (const ext of PRECEDENCE) if (name.endsWith(`.ko${ext}`)) return ext;
  return null;
}

/**
 * The compression suffix for modules installed for kernel `kver`: the
 * highest-precedence `*.ko.{gz,xz,zst}` anywhere under `<installTree>/<kver>/`
 * ('' when there is none or the directory is missing). Like DKMS's `find`, the
 * walk does not follow symlinks (so `build`/`source` are not entered) and skips
 * unreadable directories. It ends at the first `.ko.zst`; any other result
 * needs the whole tree walked to rule out a higher-precedence suffix.
 */
export async function detectKernelCompression(installTree: string, kver: string): Promise<ModuleSuffix> {
  let best = -1;
  const stack = [join(installTree, kver)];
  while (stack.length) {
    let dir;
    try {
      dir = await opendir(stack.pop()!, { bufferSize: 256 });
    } catch {
      continue;
    }
    for await (const ent of dir) {
      const ext = compressedSuffix(ent.name);
      if (ext) {
        best = Math.max(best, PRECEDENCE.indexOf(ext));
        if (best === PRECEDENCE.length - 1) {
          // Breaking out of for-await closes the directory handle.
          return PRECEDENCE[best]!;
        }
      }
      if (ent.isDirectory()) stack.push(join(dir.path, ent.name));
    }
  }
  return best === -1 ? '' : PRECEDENCE[best]!;
}

/**
 * The command compressModule() runs for `ext`, ending with the file argument's
 * position. Differences from DKMS 3.1.2+, all for reproducible output:
 *  - gzip: `-n` so no file name or mtime goes into the header.
 *  - xz: `-T1`, because xz's threaded mode (the default from 5.6 on) writes
 *    different block headers; `--check=crc32` stays, the in-kernel xz decoder
 *    accepts only CRC32 or no check.
 *  - zstd: as DKMS; -T0 output equals -T1 (only --single-thread differs).
 * Output still depends on the host tool's version; record it alongside.
 */
export function compressionCommand(ext: Exclude<ModuleSuffix, ''>): [string, ...string[]] {
  switch (ext) {
    case '.gz':
      return ['gzip', '-n', '-f'];
    case '.xz':
      return ['xz', '--check=crc32', '--lzma2=dict=1MiB', '-T1', '-f'];
    case '.zst':
      return ['zstd', '-q', '--rm', '-T0', '-f'];
  }
}

/**
 * Compresses `koPath` in place (the .ko is replaced by `<koPath><ext>`, as
 * with the CLI tools) and returns the new path; '' leaves the file as is.
 */
export async function compressModule(koPath: string, ext: ModuleSuffix): Promise<string> {
  if (ext === '') return koPath;
  if (!PRECEDENCE.includes(ext)) throw new KbundleError(`unknown module compression '${String(ext)}'`);
  if (!koPath.endsWith('.ko')) throw new KbundleError(`${koPath}: only uncompressed .ko files can be compressed`);
  const [cmd, ...args] = compressionCommand(ext);
  const r = await (await loadExeca())(cmd, [...args, koPath], { reject: false, stdin: 'ignore' });
  const out = `${koPath}${ext}`;
  if (r.exitCode !== 0) throw new KbundleError(`${cmd} failed on ${koPath}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  await access(out).catch(() => {
    throw new KbundleError(`${cmd} did not create ${out}`);
  });
  return out;
}

/** The uncompressed ELF image of a .ko, .ko.gz, .ko.xz or .ko.zst (signature trailer included). */
export async function readModule(path: string): Promise<Buffer> {
  const raw = await readFileOrFail(path, 'module');
  const elf = await decompress(raw, path);
  if (!isElf(elf)) throw new KbundleError(`${path} is not a kernel module (no ELF header after decompression)`);
  return elf;
}

export function moduleFileName(name: string, ext: ModuleSuffix): string {
  return `${name}.ko${ext}`;
}

/** 'foo.ko.xz' → 'foo'; a name without a module suffix is returned unchanged. */
export function stripModuleExt(filename: string): string {
  const m = /^(.*)\.ko(\.gz|\.xz|\.zst)?$/.exec(filename);
  return m ? m[1]! : filename;
}

/** The compression suffix of a module file name, or null when it is not a module name. */
export function moduleCompressionOf(filename: string): ModuleSuffix | null {
  if (filename.endsWith('.ko')) return '';
  return compressedSuffix(filename);
}

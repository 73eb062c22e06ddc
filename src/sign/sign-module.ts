/** Signs a kernel module the way `sign-file <hash> <key> <cert> <module>` does. */
import { KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { writeFileDurable } from '../util/atomic.js';
import { KbundleError } from '../util/errors.js';
import { isModuleHash, type ModuleHash } from './algorithms.js';
import { appendSignature, hasSignatureMarker } from './appended-signature.js';
import { buildModuleCms } from './cms.js';
import { assertKeyMatchesCertificate, certificateDer, loadPrivateKey } from './keys.js';

export interface SignModuleOptions {
  /** KeyObject, PEM text, or path to a PEM/DER private key. */
  key: KeyObject | string;
  /** Certificate, DER or PEM. */
  cert: Buffer;
  hash: ModuleHash;
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * Returns the signed module. An already-signed module is refused rather than
 * signed again: sign-file would append a second signature that the kernel
 * never looks at (it reads only the outer one, which then covers the old
 * signature as data), and DKMS only ever signs fresh build output.
 */
export async function signModule(ko: Buffer, opts: SignModuleOptions): Promise<Buffer> {
  if (!isModuleHash(opts.hash)) throw new KbundleError(`unsupported module signature hash '${String(opts.hash)}'`);
  if (!ko.subarray(0, 4).equals(ELF_MAGIC)) {
    throw new KbundleError('not an uncompressed ELF module; sign before compressing, as the kernel verifies the uncompressed image');
  }
  if (hasSignatureMarker(ko)) throw new KbundleError('module is already signed; sign the unsigned build output instead');
  const key = await loadPrivateKey(opts.key);
  const certDer = certificateDer(opts.cert);
  assertKeyMatchesCertificate(key, certDer);
  const cms = buildModuleCms({ content: ko, key, certDer, hash: opts.hash });
  return appendSignature(ko, cms);
}

/** Signs a module file in place; the file is replaced atomically and keeps its mode. */
export async function signModuleInPlace(path: string, opts: SignModuleOptions): Promise<void> {
  const signed = await signModule(await readFile(path), opts);
  await writeFileDurable(path, signed, { mode: (await stat(path)).mode & 0o7777 });
}

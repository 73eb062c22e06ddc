/**
 * The trailer the kernel expects after a signed module's ELF image
 * (include/linux/module_signature.h; docs/signing.md "Signature format"):
 *
 *   [ELF body][CMS DER][struct module_signature, 12 bytes]["~Module signature appended~\n"]
 */
import { KbundleError } from '../util/errors.js';

export const MODULE_SIG_MAGIC = Buffer.from('~Module signature appended~\n', 'latin1');
export const MODULE_SIGNATURE_SIZE = 12;
/** `id_type` for PKCS#7/CMS; the only type current kernels accept (others give -ENOPKG). */
export const PKEY_ID_PKCS7 = 2;

/** `struct module_signature`; for PKCS#7 every field except id_type and sigLen is 0. */
export interface ModuleSignatureInfo {
  algo: number;
  hash: number;
  idType: number;
  signerLen: number;
  keyIdLen: number;
  /** Length of the signature data (the CMS DER for PKCS#7), big-endian on disk. */
  sigLen: number;
}

export interface SignedModuleParts {
  body: Buffer;
  cms: Buffer;
  info: ModuleSignatureInfo;
}

export function decodeModuleSignature(raw: Buffer): ModuleSignatureInfo {
  if (raw.length !== MODULE_SIGNATURE_SIZE) throw new Error(`module_signature must be ${MODULE_SIGNATURE_SIZE} bytes`);
  return {
    algo: raw[0]!,
    hash: raw[1]!,
    idType: raw[2]!,
    signerLen: raw[3]!,
    keyIdLen: raw[4]!,
    sigLen: raw.readUInt32BE(8),
  };
}

export function encodeModuleSignature(info: ModuleSignatureInfo): Buffer {
  const b = Buffer.alloc(MODULE_SIGNATURE_SIZE);
  b[0] = info.algo;
  b[1] = info.hash;
  b[2] = info.idType;
  b[3] = info.signerLen;
  b[4] = info.keyIdLen;
  b.writeUInt32BE(info.sigLen, 8);
  return b;
}

export function hasSignatureMarker(buf: Buffer): boolean {
  return buf.length >= MODULE_SIG_MAGIC.length && buf.subarray(buf.length - MODULE_SIG_MAGIC.length).equals(MODULE_SIG_MAGIC);
}

/**
 * Splits a signed module into ELF body and CMS blob; null when the module
 * carries no signature marker. A marker with an impossible trailer throws:
 * the kernel rejects such a module (-EBADMSG), so callers must not treat it
 * as merely unsigned.
 */
export function splitSignedModule(buf: Buffer): SignedModuleParts | null {
  if (!hasSignatureMarker(buf)) return null;
  const trailer = MODULE_SIGNATURE_SIZE + MODULE_SIG_MAGIC.length;
  if (buf.length < trailer) throw new KbundleError('module signature trailer is truncated');
  const infoStart = buf.length - trailer;
  const info = decodeModuleSignature(buf.subarray(infoStart, infoStart + MODULE_SIGNATURE_SIZE));
  // Same test as the kernel's mod_check_sig(): the legacy fields must be zero for PKCS#7.
  if (info.idType !== PKEY_ID_PKCS7) {
    throw new KbundleError(`module signature has id_type ${info.idType}; only PKCS#7 (${PKEY_ID_PKCS7}) is supported`);
  }
  if (info.algo || info.hash || info.signerLen || info.keyIdLen) {
    throw new KbundleError('module signature has non-zero legacy fields for a PKCS#7 signature');
  }
  if (info.sigLen === 0 || info.sigLen > infoStart) {
    throw new KbundleError(`module signature length ${info.sigLen} does not fit in a ${buf.length}-byte file`);
  }
  const cmsStart = infoStart - info.sigLen;
  return { body: buf.subarray(0, cmsStart), cms: buf.subarray(cmsStart, infoStart), info };
}

/** Returns the module without its signature, or the module itself when unsigned. */
export function stripSignature(buf: Buffer): Buffer {
  return splitSignedModule(buf)?.body ?? buf;
}

export function appendSignature(body: Buffer, cmsDer: Buffer): Buffer {
  if (cmsDer.length === 0) throw new Error('empty CMS signature');
  const info = encodeModuleSignature({ algo: 0, hash: 0, idType: PKEY_ID_PKCS7, signerLen: 0, keyIdLen: 0, sigLen: cmsDer.length });
  return Buffer.concat([body, cmsDer, info, MODULE_SIG_MAGIC]);
}

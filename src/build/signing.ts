/**
 * Which key signs modules for a kernel, decided the way Debian's dkms 3.0.10
 * decides it (/usr/sbin/dkms, prepare_signing; facts and line numbers in
 * docs/signing.md "When kbundle signs"):
 *
 * - framework.conf `sign_file` set to something that is not an executable
 *   file: no signing ("Binary ... not found, modules won't be signed").
 *   kbundle signs in-process, so an unset sign_file needs no binary.
 * - `mok_signing_key` / `mok_certificate` from framework.conf, else the DKMS
 *   tree's mok.key / mok.pub. If either file is missing, both are generated
 *   with openssl as dkms does, then used.
 * - The hash is the kernel's CONFIG_MODULE_SIG_HASH. A kernel without it gets
 *   unsigned modules: dkms 3.0.10 signs those with sha512 anyway, dkms 3.0.11
 *   and later do not, and kbundle follows the later rule.
 *
 * Callers hold the DKMS tree's lock, so no other kbundle generates the
 * default pair at the same time; within one process concurrent kernel builds
 * share one generation (`pending`), so every module of a run carries the
 * same key.
 */
import { constants, existsSync, readFileSync, statSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { kernelConfigPath, parseKernelConfig } from '../conf/kernel-config.js';

export interface SigningPlan {
  keyPath: string;
  certPath: string;
  hash: string;
}

export type SigningDecision = { plan: SigningPlan; generated: boolean } | { plan: null; reason: string | null };

export interface SigningOptions {
  mokSigningKey?: string;
  mokCertificate?: string;
  signFile?: string;
  signHash?: string;
  dkmsTree: string;
  kernelSourceDir: string;
  /** Told once, by the build that starts generating a missing pair. */
  say?: (line: string) => void;
}

export function kernelSigHash(kernelSourceDir: string): string | null {
  try {
    const config = parseKernelConfig(readFileSync(kernelConfigPath({ kernelSourceDir }), 'utf8'));
    return config.get('CONFIG_MODULE_SIG_HASH') || null;
  } catch {
    return null;
  }
}

export const defaultMokPaths = (dkmsTree: string) => ({ key: join(dkmsTree, 'mok.key'), cert: join(dkmsTree, 'mok.pub') });

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!statSync(path).isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const pending = new Map<string, Promise<void>>();

/**
 * Makes sure key and certificate exist, generating both when either is
 * missing. True when this call generated them.
 */
export async function ensureMok(keyPath: string, certPath: string, say?: (line: string) => void): Promise<boolean> {
  const id = JSON.stringify([keyPath, certPath]);
  const inFlight = pending.get(id);
  if (inFlight) {
    await inFlight;
    return false;
  }
  if (existsSync(keyPath) && existsSync(certPath)) return false;
  const job = (async () => {
    say?.('Certificate or key are missing, generating self signed certificate for MOK...');
    const { generateMok } = await import('../sign/keys.js');
    await generateMok(keyPath, certPath);
  })();
  pending.set(id, job);
  try {
    await job;
  } finally {
    pending.delete(id);
  }
  return true;
}

export async function resolveSigning(opts: SigningOptions): Promise<SigningDecision> {
  if (opts.signFile && !(await isExecutableFile(opts.signFile))) {
    return { plan: null, reason: `Binary ${opts.signFile} not found, modules won't be signed` };
  }
  const hash = opts.signHash ?? kernelSigHash(opts.kernelSourceDir);
  if (!hash) return { plan: null, reason: `the kernel config has no CONFIG_MODULE_SIG_HASH, modules won't be signed` };
  const defaults = defaultMokPaths(opts.dkmsTree);
  const keyPath = opts.mokSigningKey ?? defaults.key;
  const certPath = opts.mokCertificate ?? defaults.cert;
  if (keyPath.startsWith('pkcs11:')) {
    return { plan: null, reason: `kbundle cannot sign with the PKCS#11 key ${keyPath}, modules won't be signed` };
  }
  let generated: boolean;
  try {
    generated = await ensureMok(keyPath, certPath, opts.say);
  } catch (e) {
    return { plan: null, reason: `Key file ${keyPath} not found and can't be generated (${(e as Error).message}), modules won't be signed` };
  }
  return { plan: { keyPath, certPath, hash }, generated };
}

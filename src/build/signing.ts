/**
 * Which key signs modules for a kernel (dkms-reference.md §9). As in DKMS:
 * mok_signing_key / mok_certificate from framework.conf, else the DKMS tree's
 * mok.key + mok.pub; the hash is the kernel's CONFIG_MODULE_SIG_HASH.
 * Unlike DKMS 3.0.10 kbundle never generates a key on its own (run
 * `kbundle generate_mok`), and a kernel without CONFIG_MODULE_SIG_HASH gets
 * unsigned modules, as DKMS >= 3.0.11 does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelConfigPath, parseKernelConfig } from '../conf/kernel-config.js';

export interface SigningPlan {
  keyPath: string;
  certPath: string;
  hash: string;
}

export type SigningDecision = { plan: SigningPlan } | { plan: null; reason: string | null };

export function kernelSigHash(kernelSourceDir: string): string | null {
  try {
    const config = parseKernelConfig(readFileSync(kernelConfigPath({ kernelSourceDir }), 'utf8'));
    return config.get('CONFIG_MODULE_SIG_HASH') || null;
  } catch {
    return null;
  }
}

export function resolveSigning(opts: { mokSigningKey?: string; mokCertificate?: string; signHash?: string; dkmsTree: string; kernelSourceDir: string }): SigningDecision {
  const configured = Boolean(opts.mokSigningKey || opts.mokCertificate);
  const keyPath = opts.mokSigningKey ?? join(opts.dkmsTree, 'mok.key');
  const certPath = opts.mokCertificate ?? join(opts.dkmsTree, 'mok.pub');
  const haveKey = existsSync(keyPath) && existsSync(certPath);
  if (!haveKey) {
    return { plan: null, reason: configured ? `signing key ${keyPath} or certificate ${certPath} not found, modules won't be signed` : null };
  }
  const hash = opts.signHash ?? kernelSigHash(opts.kernelSourceDir);
  if (!hash) return { plan: null, reason: `the kernel config has no CONFIG_MODULE_SIG_HASH, modules won't be signed` };
  return { plan: { keyPath, certPath, hash } };
}

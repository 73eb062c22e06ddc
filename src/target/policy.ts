/**
 * Whether the target kernel will refuse unsigned or untrusted modules
 * (kernel/module/signing.c, security/lockdown/; docs/installer.md "Secure Boot"). The running system's /sys
 * is the truth for the running kernel; an image root has no running kernel,
 * so only what the image itself states (kernel config, kernel cmdline) counts
 * and everything else stays unknown (null) rather than borrowing the host's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseKernelConfig } from '../conf/kernel-config.js';
import { isHostRoot, resolveHostPath } from './rooted.js';

export type LockdownMode = 'none' | 'integrity' | 'confidentiality';

export interface SignaturePolicy {
  /** true: unsigned/untrusted modules are rejected; false: they load (tainting); null: unknown. */
  enforced: boolean | null;
  /** Kernel lockdown mode; anything but 'none' also rejects unsigned modules. null: unknown. */
  lockdown: LockdownMode | (string & {}) | null;
  /** The files each conclusion came from, for `explain` output. */
  evidence: string[];
}

/** /sys/kernel/security/lockdown lists all modes and brackets the active one. */
export function parseLockdown(text: string): string | null {
  const m = /\[([a-z_]+)\]/.exec(text);
  return m ? m[1]! : null;
}

/** /sys/module/module/parameters/sig_enforce holds Y or N. */
export function parseSigEnforce(text: string): boolean | null {
  const t = text.trim();
  if (t === 'Y' || t === '1') return true;
  if (t === 'N' || t === '0') return false;
  return null;
}

export interface CmdlinePolicy {
  enforced: boolean | null;
  lockdown: string | null;
}

/** module.sig_enforce=… and lockdown=… on a kernel command line; the last occurrence wins, as in the kernel. */
export function parseCmdlinePolicy(cmdline: string): CmdlinePolicy {
  const out: CmdlinePolicy = { enforced: null, lockdown: null };
  for (const word of cmdline.split(/\s+/)) {
    const m = /^([^=]+)=(.*)$/.exec(word);
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'module.sig_enforce') out.enforced = /^(1|y|Y|on)$/.test(value) ? true : /^(0|n|N|off)$/.test(value) ? false : out.enforced;
    if (key === 'lockdown' && (value === 'integrity' || value === 'confidentiality')) out.lockdown = value;
  }
  return out;
}

export interface ConfigPolicy {
  /** CONFIG_MODULE_SIG_FORCE=y makes enforcement unconditional. */
  forced: boolean;
  /** CONFIG_MODULE_SIG unset: the kernel cannot check signatures at all. */
  sigSupported: boolean;
  /** CONFIG_LOCK_DOWN_KERNEL_FORCE_*: lockdown from boot regardless of cmdline. */
  lockdown: LockdownMode | null;
}

export function configPolicy(config: Map<string, string>): ConfigPolicy {
  const y = (k: string) => config.get(k) === 'y';
  return {
    forced: y('CONFIG_MODULE_SIG_FORCE'),
    sigSupported: y('CONFIG_MODULE_SIG'),
    lockdown: y('CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY')
      ? 'confidentiality'
      : y('CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY')
        ? 'integrity'
        : null,
  };
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

export interface PolicyInputs {
  kernel: string;
  root: string;
  installTree: string;
  /** Where the host's sysfs is mounted (default /sys); consulted only when root is '/'. */
  sysDir?: string;
}

/**
 * Combines, strongest first: a config that forces enforcement/lockdown (true
 * on every boot of that kernel), then the live /sys values (host only), then
 * an image's kernel cmdline. A config without CONFIG_MODULE_SIG means the
 * kernel cannot enforce, so `enforced` is false there.
 */
export async function readSignaturePolicy({ kernel, root, installTree, sysDir = '/sys' }: PolicyInputs): Promise<SignaturePolicy> {
  const evidence: string[] = [];
  let enforced: boolean | null = null;
  let lockdown: string | null = null;

  let cfg: ConfigPolicy | null = null;
  for (const c of [join(root, 'boot', `config-${kernel}`), join(installTree, kernel, 'build', '.config')]) {
    const path = await resolveHostPath(root, c);
    const text = await readText(path);
    if (text === null) continue;
    cfg = configPolicy(parseKernelConfig(text));
    evidence.push(`config ${path}`);
    break;
  }

  if (isHostRoot(root)) {
    const sePath = join(sysDir, 'module/module/parameters/sig_enforce');
    const se = await readText(sePath);
    if (se !== null) {
      enforced = parseSigEnforce(se);
      evidence.push(`${sePath}=${se.trim()}`);
    }
    const ldPath = join(sysDir, 'kernel/security/lockdown');
    const ld = await readText(ldPath);
    if (ld !== null) {
      lockdown = parseLockdown(ld);
      evidence.push(`${ldPath}=${lockdown ?? '?'}`);
    }
  } else {
    // kernel-install(8) reads /etc/kernel/cmdline when building the image's boot entries.
    const path = await resolveHostPath(root, join(root, 'etc/kernel/cmdline'));
    const text = await readText(path);
    if (text !== null) {
      const c = parseCmdlinePolicy(text);
      if (c.enforced !== null) enforced = c.enforced;
      if (c.lockdown !== null) lockdown = c.lockdown;
      evidence.push(`cmdline ${path}`);
    }
  }

  if (cfg) {
    if (cfg.forced) enforced = true;
    else if (!cfg.sigSupported && enforced === null) enforced = false;
    if (cfg.lockdown) lockdown = cfg.lockdown;
  }
  return { enforced, lockdown, evidence };
}

/**
 * True when the kernel will reject a module whose signer it does not trust;
 * null when unknown. A missing lockdown value counts as "not locked": the
 * lockdown LSM is then absent, or the root is an image that does not force it.
 */
export function signatureRequired(p: Pick<SignaturePolicy, 'enforced' | 'lockdown'>): boolean | null {
  if (p.enforced === true) return true;
  if (p.lockdown !== null && p.lockdown !== 'none') return true;
  return p.enforced === false ? false : null;
}

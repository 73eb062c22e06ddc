/**
 * Does the target kernel trust the certificate that signed a bundle's
 * modules? The kernel's keyrings (.builtin_trusted_keys, .secondary_trusted_keys,
 * .platform, .machine — MOK keys land in the last two) are visible in
 * /proc/keys as `asymmetric` keys described "<subject CN>: <key id hex>".
 * A module signature names its signer by the issuer CN (and serial), so the
 * CN is what can be compared; the serial is matched too when a description
 * happens to carry it.
 */
import { readFile } from 'node:fs/promises';

export interface KernelKey {
  /** The key description, e.g. "Debian Secure Boot CA: 6ccece7e…". */
  description: string;
}

export type SignerStatus = 'trusted' | 'untrusted' | 'unknown';

/** `asymmetric` rows of /proc/keys; other key types (keyrings, user keys) are not signers. */
export function parseProcKeys(text: string): KernelKey[] {
  const keys: KernelKey[] = [];
  for (const line of text.split('\n')) {
    // <id> <flags> <usage> <timeout> <perm> <uid> <gid> <type> <description>: <summary>
    const m = /^\S+\s+\S+\s+\d+\s+\S+\s+[0-9a-f]+\s+\d+\s+\d+\s+asymmetric\s+(.*)$/.exec(line.trim());
    if (m) keys.push({ description: m[1]! });
  }
  return keys;
}

const hex = (s: string) => s.replace(/[^0-9a-fA-F]/g, '').toLowerCase();

export function signerStatus(sig: { signer?: string; keyId?: string } | null | undefined, keys: KernelKey[] | null): SignerStatus {
  if (!sig?.signer && !sig?.keyId) return keys === null ? 'unknown' : 'untrusted';
  if (keys === null) return 'unknown';
  const cn = sig.signer ?? '';
  const id = sig.keyId ? hex(sig.keyId) : '';
  const hit = keys.some((k) => (cn && k.description.startsWith(`${cn}:`)) || (id.length >= 8 && hex(k.description).includes(id)));
  return hit ? 'trusted' : 'untrusted';
}

/**
 * The running kernel's keys. Only meaningful for the running system: an image
 * root will boot some other kernel with its own keyrings, so null (unknown).
 * An empty or unreadable /proc/keys (keys are listed only to processes allowed
 * to view them) is also unknown, not "trusts nothing".
 */
export async function readKernelKeys(hostRoot: boolean, procKeys = '/proc/keys'): Promise<KernelKey[] | null> {
  if (!hostRoot) return null;
  try {
    const keys = parseProcKeys(await readFile(procKeys, 'utf8'));
    return keys.length ? keys : null;
  } catch {
    return null;
  }
}

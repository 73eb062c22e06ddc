/**
 * What the installer keeps in the DKMS tree, beside DKMS's own files (all
 * dot-named, so `dkms status` and kbundle's tree scan skip them):
 *   .kbundle-bundles/<hex>.kbundle          every installed bundle, by root digest (autoinstall re-runs from these)
 *   .kbundle-bundles/receipts/<pkg>.json    newest installed bundle per package (anti-rollback, autoinstall)
 *   .kbundle-journal.json                   intent of an install in progress (journal.ts)
 *   .kbundle-staging/                       private staging, renamed into place
 *   .kbundle-install.lock                   lock.ts
 * and the per-kernel install record (<m>/<v>/<k>/<a>/.kbundle-install.json) carries the bundle digest.
 */
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { installRecordPath, type Roots, type Target } from '../tree/paths.js';
import { readJsonRecord, writeJsonRecord, type InstallRecord } from '../tree/records.js';

export interface Receipt {
  format: 'kbundle-receipt-v1';
  package: string;
  version: string;
  bundle: string;
  rootDigest: string;
  created: string;
  createdEpoch: number;
  /** Stored bundle file, relative to the DKMS tree. */
  file: string;
}

export const bundlesDir = (r: Roots) => join(r.dkmsTree, '.kbundle-bundles');
export const storedBundlePath = (r: Roots, rootDigest: string) => join(bundlesDir(r), `${rootDigest.replace(/^sha256:/, '')}.kbundle`);
export const receiptPath = (r: Roots, pkg: string) => join(bundlesDir(r), 'receipts', `${pkg}.json`);
export const stagingRoot = (r: Roots) => join(r.dkmsTree, '.kbundle-staging');

const hidden = (n: string) => n.startsWith('.');

export async function readReceipts(r: Roots): Promise<Map<string, Receipt>> {
  const out = new Map<string, Receipt>();
  const dir = join(bundlesDir(r), 'receipts');
  for (const n of (await readdir(dir).catch(() => [] as string[])).filter((x) => x.endsWith('.json')).sort()) {
    const rec = await readJsonRecord<Receipt>(join(dir, n));
    if (rec?.format === 'kbundle-receipt-v1') out.set(rec.package, rec);
  }
  return out;
}

export async function writeReceipt(r: Roots, rec: Receipt): Promise<void> {
  await writeJsonRecord(receiptPath(r, rec.package), rec);
}

export interface InstalledOnTarget {
  module: string;
  version: string;
  record: InstallRecord | null;
}

/** Every module with a kernel-<k>-<a> link for this target, and its install record. */
export async function installedOn(r: Roots, t: Target): Promise<InstalledOnTarget[]> {
  const out: InstalledOnTarget[] = [];
  for (const module of (await readdir(r.dkmsTree).catch(() => [] as string[])).filter((n) => !hidden(n)).sort()) {
    let version: string | undefined;
    try {
      version = (await readlink(join(r.dkmsTree, module, `kernel-${t.kernel}-${t.arch}`))).split('/')[0];
    } catch {
      continue;
    }
    if (!version) continue;
    out.push({ module, version, record: await readJsonRecord<InstallRecord>(installRecordPath(r, { module, version }, t)) });
  }
  return out;
}

/** Install paths (compression suffix dropped) owned by each installed module, for conflict checks. */
export function ownersOf(installed: InstalledOnTarget[]): Map<string, string> {
  const owners = new Map<string, string>();
  for (const i of installed) for (const f of i.record?.files ?? []) owners.set(f.path.replace(/\.ko(\.gz|\.xz|\.zst)?$/, '.ko'), i.module);
  return owners;
}

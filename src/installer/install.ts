/**
 * `kbundle bundle install` and its siblings, in order:
 *   verify (openBundle: signature, layout, every digest)  — nothing written
 *   lock the DKMS tree; replay any interrupted install
 *   plan (pure) and refuse on any problem                 — nothing written
 *   stage privately (source, compressed modules)          — invisible
 *   store the bundle; write the journal
 *   commit (renames, core install, depmod); receipts; drop the journal.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, open, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { openBundle, type OpenBundle } from '../bundle/open.js';
import type { PublicKey } from '../bundle/sign-index.js';
import { BundleExit } from '../bundle/exit-codes.js';
import type { RunContext } from '../lifecycle/context.js';
import { sourceDir, versionDir, type Target } from '../tree/paths.js';
import { KbundleError } from '../util/errors.js';
import { isDir, pathExists } from '../util/fs.js';
import { commitPackage, rollBack, sweepTemps, tempDirsOf } from './commit.js';
import { clearJournal, readJournal, writeJournal, type Journal } from './journal.js';
import { acquireLock } from './lock.js';
import type { InstallPlan } from './plan.js';
import { preparePlan, type PlanRequest } from './prepare.js';
import { discardStaging, stageInstall } from './stage.js';
import { bundlesDir, installedOn, readReceipts, stagingRoot, storedBundlePath, writeReceipt } from './state.js';

export interface InstallRequest extends PlanRequest {
  trustedKeys: PublicKey[];
  lockTimeoutMs: number;
}

export interface InstallOutcome {
  plan: InstallPlan;
  installed: string[];
  skipped: string[];
}

/** Signature (unless --insecure with no key), layout and every digest, before anything is written. */
export function openVerified(file: string, trustedKeys: PublicKey[]): Promise<OpenBundle> {
  return openBundle(file, { trustedKeys, skipSignature: trustedKeys.length === 0 });
}

export function refuse(plan: InstallPlan): void {
  if (!plan.problems.length) return;
  const [first, ...rest] = plan.problems;
  throw new KbundleError(first!.message, first!.code, [...first!.details, ...rest.flatMap((p) => [p.message, ...p.details])]);
}

async function storeBundle(ctx: RunContext, bundle: OpenBundle): Promise<string> {
  const dest = storedBundlePath(ctx.roots, bundle.index.rootDigest);
  if (await pathExists(dest)) return dest;
  const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await copyFile(bundle.index.file, tmp).catch(async (e) => {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const { mkdir } = await import('node:fs/promises');
    await mkdir(bundlesDir(ctx.roots), { recursive: true });
    await copyFile(bundle.index.file, tmp);
  });
  // Durable before the journal names it: a replay after power loss needs these bytes.
  const fh = await open(tmp, 'r');
  await fh.sync();
  await fh.close();
  await rename(tmp, dest);
  return dest;
}

/** Stage, store, journal, commit, record. `replay` keeps the journal's record of what existed before. */
async function execute(ctx: RunContext, bundle: OpenBundle, plan: InstallPlan, req: PlanRequest, replay: Journal | null): Promise<InstallOutcome> {
  const t: Target = { kernel: plan.target.kernel, arch: plan.target.arch };
  const todo = plan.packages.filter((p) => !p.alreadyInstalled);
  const skipped = plan.packages.filter((p) => p.alreadyInstalled).map((p) => `${p.package}/${p.version}`);
  for (const s of skipped) ctx.say(`${s} is already installed on ${t.kernel} (${t.arch}) from this bundle, skip. Use --force to reinstall.`);
  if (!todo.length) return { plan, installed: [], skipped };

  const staged = await stageInstall(ctx.roots, bundle, plan, todo);
  let journal: Journal | null = null;
  try {
    const stored = await storeBundle(ctx, bundle);
    journal = replay ?? {
      format: 'kbundle-journal-v1',
      pid: process.pid,
      startedAt: new Date().toISOString(),
      rootDigest: bundle.index.rootDigest,
      bundle: relative(ctx.roots.dkmsTree, stored),
      root: req.root,
      roots: ctx.roots,
      kernel: t.kernel,
      arch: t.arch,
      packages: await Promise.all(
        todo.map(async (p) => ({
          package: p.package,
          version: p.version,
          sourceExisted: await pathExists(sourceDir(ctx.roots, { module: p.package, version: p.version })),
          versionDirExisted: await isDir(versionDir(ctx.roots, { module: p.package, version: p.version })),
          installPaths: p.modules.map((m) => m.installPath),
        })),
      ),
    };
    if (!replay) await writeJournal(journal);
    // ---- first visible change below this line ----
    for (const sp of staged.packages) {
      ctx.say(`${sp.plan.package}/${sp.plan.version}: ${sp.plan.level}${sp.plan.fromKernel ? ` (binary built for ${sp.plan.fromKernel})` : ''} -> ${t.kernel} (${t.arch})`);
      await commitPackage(ctx, sp, t, bundle.index.rootDigest);
    }
    const createdEpoch = Math.floor(Date.parse(bundle.index.created) / 1000);
    for (const p of todo) {
      await writeReceipt(ctx.roots, {
        format: 'kbundle-receipt-v1',
        package: p.package,
        version: p.version,
        bundle: `${bundle.index.name}:${bundle.index.version}`,
        rootDigest: bundle.index.rootDigest,
        created: bundle.index.created,
        createdEpoch,
        file: relative(ctx.roots.dkmsTree, storedBundlePath(ctx.roots, bundle.index.rootDigest)),
      });
    }
    await clearJournal(ctx.roots.dkmsTree);
  } catch (e) {
    if (journal && !replay) {
      ctx.warn(`install failed (${(e as Error).message}); rolling back.`);
      await rollBack(ctx, journal).catch((re) => ctx.warn(`roll-back incomplete: ${(re as Error).message}`));
      await clearJournal(ctx.roots.dkmsTree);
    }
    throw e;
  } finally {
    await discardStaging(ctx.roots, staged.dir);
    await collectGarbage(ctx);
  }
  return { plan, installed: todo.map((p) => `${p.package}/${p.version}`), skipped };
}

/**
 * Drops what only a killed installer leaves: staging dirs, temp files of the
 * bundle store, stored bundles no receipt or journal names. Called under the lock.
 */
export async function collectGarbage(ctx: RunContext): Promise<void> {
  if (await pathExists(join(ctx.roots.dkmsTree, '.kbundle-journal.json'))) return;
  await rm(stagingRoot(ctx.roots), { recursive: true, force: true });
  const dir = bundlesDir(ctx.roots);
  if (!(await isDir(dir))) return;
  const keep = new Set([...(await readReceipts(ctx.roots)).values()].map((r) => r.file.split('/').pop()));
  for (const n of await readdir(dir)) {
    if (n === 'receipts') continue;
    if (!keep.has(n)) await rm(join(dir, n), { recursive: true, force: true });
  }
  await sweepTemps([join(dir, 'receipts')]);
  await rmdir(join(dir, 'receipts')).catch(() => undefined);
  await rmdir(dir).catch(() => undefined);
}

/**
 * Replays an interrupted install (caller holds the lock): forward from the
 * stored bundle, or — if that is impossible — back to the state before.
 */
export async function recoverPending(ctx0: RunContext): Promise<'none' | 'forward' | 'back'> {
  const j = await readJournal(ctx0.roots.dkmsTree);
  if (!j) {
    await collectGarbage(ctx0);
    return 'none';
  }
  const ctx: RunContext = { ...ctx0, roots: j.roots };
  ctx.warn(`an install of ${j.packages.map((p) => `${p.package}/${p.version}`).join(', ')} on ${j.kernel} (${j.arch}) by pid ${j.pid} was interrupted; finishing it.`);
  await sweepTemps(tempDirsOf(ctx, j));
  await rm(stagingRoot(ctx.roots), { recursive: true, force: true });
  let result: 'forward' | 'back' = 'forward';
  try {
    // The stored copy was verified (signature included) before the journal named it; its digests are checked again here.
    const bundle = await openBundle(join(ctx.roots.dkmsTree, j.bundle), { trustedKeys: [], skipSignature: true });
    if (bundle.index.rootDigest !== j.rootDigest) throw new Error(`stored bundle ${j.bundle} is not ${j.rootDigest}`);
    const req: PlanRequest = { root: j.root, kernel: j.kernel, arch: j.arch, signatureChecked: false, allowDowngrade: true, requireTrustedSigner: false, force: true };
    const { plan } = await preparePlan(ctx, bundle, req);
    plan.packages = plan.packages.filter((p) => j.packages.some((x) => x.package === p.package));
    refuse(plan);
    await execute(ctx, bundle, plan, req, j);
  } catch (e) {
    ctx.warn(`cannot finish it (${(e as Error).message}); rolling back.`);
    try {
      await rollBack(ctx, j);
      await clearJournal(ctx.roots.dkmsTree);
    } catch (re) {
      throw new KbundleError(`recovering the interrupted install failed: ${(re as Error).message}`, BundleExit.RecoveryFailed, [`The journal is kept: ${join(ctx.roots.dkmsTree, '.kbundle-journal.json')}`]);
    }
    result = 'back';
  }
  await collectGarbage(ctx);
  return result;
}

export async function withLock<T>(ctx: RunContext, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(ctx.roots.dkmsTree, { timeoutMs, onWait: (pid) => ctx.warn(`waiting for another kbundle install (pid ${pid}) to finish...`) });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * For readers (`status`): replay an interrupted install, waiting for the
 * lock; leftovers of an installer killed before its journal (stale lock,
 * staging) are only tidied if nobody holds the lock right now.
 */
export async function settlePending(ctx: RunContext): Promise<void> {
  const d = ctx.roots.dkmsTree;
  const journal = await pathExists(join(d, '.kbundle-journal.json'));
  if (!journal && !(await pathExists(join(d, '.kbundle-install.lock'))) && !(await pathExists(stagingRoot(ctx.roots)))) return;
  try {
    await withLock(ctx, journal ? 600_000 : 0, () => recoverPending(ctx));
  } catch (e) {
    if (!journal && (e as KbundleError).exitCode === BundleExit.Locked) return; // a live install: it tidies itself
    throw e;
  }
}

export async function installBundle(ctx: RunContext, file: string, req: InstallRequest): Promise<InstallOutcome> {
  const bundle = await openVerified(file, req.trustedKeys);
  return withLock(ctx, req.lockTimeoutMs, async () => {
    await recoverPending(ctx);
    const { plan } = await preparePlan(ctx, bundle, req);
    refuse(plan);
    for (const w of plan.warnings) ctx.warn(w);
    return execute(ctx, bundle, plan, req, null);
  });
}

export interface AutoinstallOutcome {
  installed: string[];
  failed: Array<{ package: string; code: number; message: string }>;
}

/**
 * A new kernel: re-run the selection from every stored bundle (newest per
 * package), offline. Packages already installed on the kernel are left alone.
 */
export async function autoinstallFromBundles(ctx: RunContext, root: string, targets: Target[], lockTimeoutMs: number): Promise<AutoinstallOutcome> {
  const out: AutoinstallOutcome = { installed: [], failed: [] };
  if (!(await isDir(bundlesDir(ctx.roots)))) return out; // no bundle was ever installed: nothing to lock
  return withLock(ctx, lockTimeoutMs, async () => {
    await recoverPending(ctx);
    const receipts = [...(await readReceipts(ctx.roots)).values()];
    const byBundle = new Map(receipts.map((r) => [r.rootDigest, r]));
    for (const t of targets) {
      const present = new Set((await installedOn(ctx.roots, t)).map((i) => i.module));
      for (const r of byBundle.values()) {
        const pkgs = receipts.filter((x) => x.rootDigest === r.rootDigest).map((x) => x.package);
        if (pkgs.every((p) => present.has(p))) continue;
        try {
          const bundle = await openBundle(join(ctx.roots.dkmsTree, r.file), { trustedKeys: [], skipSignature: true });
          if (bundle.index.rootDigest !== r.rootDigest) throw new KbundleError(`stored bundle ${r.file} does not match its receipt`, BundleExit.DigestMismatch);
          const req: PlanRequest = { root, kernel: t.kernel, arch: t.arch, signatureChecked: true, allowDowngrade: false, requireTrustedSigner: false, force: false };
          const { plan } = await preparePlan(ctx, bundle, req);
          plan.packages = plan.packages.filter((p) => pkgs.includes(p.package) && !present.has(p.package));
          plan.problems = plan.problems.filter((pr) => plan.packages.some((p) => pr.message.startsWith(`${p.package}`)));
          refuse(plan);
          for (const w of plan.warnings) ctx.warn(w);
          const res = await execute(ctx, bundle, plan, req, null);
          out.installed.push(...res.installed.map((x) => `${x} ${t.kernel} (${t.arch})`));
        } catch (e) {
          const err = e as KbundleError;
          ctx.warn(`bundle ${r.bundle} on ${t.kernel} (${t.arch}): ${err.message}`);
          for (const d of err.details ?? []) ctx.warn(`  ${d}`);
          out.failed.push({ package: pkgs.join(','), code: err.exitCode ?? 1, message: err.message });
        }
      }
    }
    return out;
  });
}

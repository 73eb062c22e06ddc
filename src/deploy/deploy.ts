/**
 * `kbundle bundle install` and its siblings, in order:
 *   verify (openBundle: signature, layout, every digest)  — nothing written
 *   lock the DKMS tree; replay any interrupted install
 *   plan (pure) and refuse on any problem                 — nothing written
 *   stage privately (source, compressed modules)          — invisible
 *   store the bundle; write the journal
 *   commit (renames, core install, depmod); receipts; drop the journal.
 */
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { openBundle, type OpenBundle } from '../bundle/read/open.js';
import type { PublicKey } from '../sign/minisign.js';
import type { RunContext } from '../lifecycle/context.js';
import { sourceDir, versionDir, type Target } from '../tree/paths.js';
import { KbundleError } from '../util/errors.js';
import { isDir, pathExists } from '../util/fs.js';
import { beginOp, endOp, journalPath } from '../recovery/journal.js';
import { contextFromRecord, recordContext, type BundleInstallOp } from '../recovery/ops.js';
import { withTreeLock } from '../recovery/recover.js';
import { removeDurable, removeIfEmpty, sweepTemps } from '../util/atomic.js';
import { copyVerified } from '../bundle/read/copy-verified.js';
import { commitPackage, rollBack } from './commit.js';
import type { InstallPlan } from './plan.js';
import { preparePlan, type PlanRequest } from './prepare.js';
import { discardStaging, stageInstall } from './stage.js';
import { bundlesDir, installedOn, readReceipts, stagingRoot, storedBundlePath, writeReceipt } from './state.js';
import { ExitCode } from '../util/exit-codes.js';

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
  // The verified bytes, durable before the journal names them (a replay after power loss needs them);
  // the user's file may have changed since it was verified, which copyVerified refuses.
  await copyVerified(bundle, dest);
  return dest;
}

/** Stage, store, journal, commit, record. `replay` is the journaled op being finished (it keeps what existed before). */
async function execute(ctx: RunContext, bundle: OpenBundle, plan: InstallPlan, req: PlanRequest, replay: BundleInstallOp | null): Promise<InstallOutcome> {
  const t: Target = { kernel: plan.target.kernel, arch: plan.target.arch };
  const todo = plan.packages.filter((p) => !p.alreadyInstalled);
  const skipped = plan.packages.filter((p) => p.alreadyInstalled).map((p) => `${p.package}/${p.version}`);
  for (const s of skipped) ctx.say(`${s} is already installed on ${t.kernel} (${t.arch}) from this bundle, skip. Use --force to reinstall.`);
  if (!todo.length) {
    if (replay) await endOp(ctx.roots.dkmsTree, replay.id);
    return { plan, installed: [], skipped };
  }

  const staged = await stageInstall(ctx.roots, bundle, plan, todo);
  let op: BundleInstallOp | null = null;
  try {
    const stored = await storeBundle(ctx, bundle);
    op =
      replay ??
      (await beginOp(ctx.roots.dkmsTree, {
        kind: 'bundle-install',
        pid: process.pid,
        startedAt: new Date().toISOString(),
        ctx: recordContext(ctx),
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
      }));
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
    await endOp(ctx.roots.dkmsTree, op.id);
  } catch (e) {
    if (op && !replay) {
      ctx.warn(`install failed (${(e as Error).message}); rolling back.`);
      await rollBack(ctx, op).catch((re) => ctx.warn(`roll-back incomplete: ${(re as Error).message}`));
      await endOp(ctx.roots.dkmsTree, op.id);
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
  if (await pathExists(journalPath(ctx.roots.dkmsTree))) return;
  await removeDurable(stagingRoot(ctx.roots));
  const dir = bundlesDir(ctx.roots);
  if (!(await isDir(dir))) return;
  const keep = new Set([...(await readReceipts(ctx.roots)).values()].map((r) => r.file.split('/').pop()));
  for (const n of await readdir(dir)) {
    if (n === 'receipts') continue;
    if (!keep.has(n)) await removeDurable(join(dir, n));
  }
  await sweepTemps([join(dir, 'receipts')], { legacy: true });
  await removeIfEmpty(join(dir, 'receipts'));
  await removeIfEmpty(dir);
}

/**
 * Finishes an interrupted bundle install (recovery, under the lock): forward
 * from the stored bundle, with the facts of the run that started it, or — if
 * that is impossible — back to the state before.
 */
export async function resumeBundleInstall(io: RunContext, j: BundleInstallOp): Promise<'forward' | 'back'> {
  const ctx: RunContext = j.ctx ? contextFromRecord(j.ctx, io) : { ...io, roots: j.roots };
  await removeDurable(stagingRoot(ctx.roots));
  try {
    // The stored copy was verified (signature included) before the journal named it; its digests are checked again here.
    const bundle = await openBundle(join(ctx.roots.dkmsTree, j.bundle), { trustedKeys: [], skipSignature: true });
    if (bundle.index.rootDigest !== j.rootDigest) throw new Error(`stored bundle ${j.bundle} is not ${j.rootDigest}`);
    const req: PlanRequest = { root: j.root, kernel: j.kernel, arch: j.arch, signatureChecked: false, allowDowngrade: true, requireTrustedSigner: false, force: true };
    const { plan } = await preparePlan(ctx, bundle, req);
    plan.packages = plan.packages.filter((p) => j.packages.some((x) => x.package === p.package));
    refuse(plan);
    await execute(ctx, bundle, plan, req, j);
    return 'forward';
  } catch (e) {
    ctx.warn(`cannot finish it (${(e as Error).message}); rolling back.`);
    await rollBack(ctx, j);
    await endOp(ctx.roots.dkmsTree, j.id);
    return 'back';
  }
}

export async function installBundle(ctx: RunContext, file: string, req: InstallRequest): Promise<InstallOutcome> {
  const bundle = await openVerified(file, req.trustedKeys);
  return withTreeLock(
    ctx,
    'bundle install',
    async () => {
      const { plan } = await preparePlan(ctx, bundle, req);
      refuse(plan);
      for (const w of plan.warnings) ctx.warn(w);
      return execute(ctx, bundle, plan, req, null);
    },
    req.lockTimeoutMs,
  );
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
  return withTreeLock(ctx, 'bundle autoinstall', async () => {
    const receipts = [...(await readReceipts(ctx.roots)).values()];
    const byBundle = new Map(receipts.map((r) => [r.rootDigest, r]));
    for (const t of targets) {
      const present = new Set((await installedOn(ctx.roots, t)).map((i) => i.module));
      for (const r of byBundle.values()) {
        const pkgs = receipts.filter((x) => x.rootDigest === r.rootDigest).map((x) => x.package);
        if (pkgs.every((p) => present.has(p))) continue;
        try {
          const bundle = await openBundle(join(ctx.roots.dkmsTree, r.file), { trustedKeys: [], skipSignature: true });
          if (bundle.index.rootDigest !== r.rootDigest) throw new KbundleError(`stored bundle ${r.file} does not match its receipt`, ExitCode.DigestMismatch);
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
  }, lockTimeoutMs);
}

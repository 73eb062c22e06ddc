/**
 * Reads everything the pure planner needs (target facts, the tree's state,
 * kernel keys) without writing anything, and runs it. Shared by `plan`,
 * `install`, recovery and autoinstall.
 */
import { resolve } from 'node:path';
import type { OpenBundle } from '../bundle/read/open.js';
import { detectKernelCompression } from '../kmod/compression.js';
import { installedLocation, type RunContext } from '../lifecycle/context.js';
import { readTargetFacts, type TargetFacts } from '../target/facts.js';
import { isHostRoot } from '../target/rooted.js';
import { planInstall, type InstallPlan } from './plan.js';
import { installedOn, ownersOf, readReceipts } from './state.js';
import { readKernelKeys } from './signer.js';

export interface PlanRequest {
  root: string;
  kernel: string;
  arch: string;
  signatureChecked: boolean;
  allowDowngrade: boolean;
  requireTrustedSigner: boolean;
  force: boolean;
}

export async function preparePlan(ctx: RunContext, bundle: OpenBundle, req: PlanRequest): Promise<{ plan: InstallPlan; facts: TargetFacts }> {
  const { roots } = ctx;
  const root = resolve(req.root);
  const t = { kernel: req.kernel, arch: req.arch };
  const facts = await readTargetFacts({ kernel: req.kernel, arch: req.arch, root, installTree: roots.installTree });
  const compression = await detectKernelCompression(roots.installTree, req.kernel);
  const installed = await installedOn(roots, t);
  const ours = new Set(bundle.index.packages.map((p) => p.name));
  const installedDigest = new Map<string, string>();
  for (const i of installed) {
    const pkg = bundle.index.packages.find((p) => p.name === i.module);
    if (pkg && i.version === pkg.version && i.record?.bundleDigest) installedDigest.set(i.module, i.record.bundleDigest);
  }
  const plan = planInstall({
    index: bundle.index,
    signatureChecked: req.signatureChecked,
    target: facts,
    compression,
    installTree: roots.installTree,
    location: (l) => installedLocation(ctx, l),
    state: {
      receipts: await readReceipts(roots),
      // A module's own earlier install is not a conflict: it is replaced.
      owners: ownersOf(installed.filter((i) => !ours.has(i.module))),
      installedDigest,
      kernelKeys: await readKernelKeys(isHostRoot(root)),
    },
    allowDowngrade: req.allowDowngrade,
    requireTrustedSigner: req.requireTrustedSigner,
    force: req.force,
  });
  return { plan, facts };
}

/**
 * The installer's whole decision, pure: given a verified bundle index, the
 * target's facts and what the DKMS tree already holds, which build of each
 * package goes where, and every reason to refuse. `bundle plan` prints it,
 * `bundle install` executes it; neither can disagree with the other because
 * both call this.
 */
import type { BundleIndex, PackageSummary } from '../bundle/read/verify.js';
import type { ModuleSuffix } from '../kmod/compression.js';
import { compareVersions } from '../lifecycle/versions.js';
import { candidatesFromTargetConfig, explain, selectBinary, type Level, type Selection, type SelectionTarget } from '../select/index.js';
import { signatureRequired, type SignaturePolicy } from '../target/policy.js';
import type { Receipt } from './state.js';
import { signerStatus, type KernelKey, type SignerStatus } from './signer.js';
import { ExitCode } from '../util/exit-codes.js';

export interface PlannedModule {
  name: string;
  /** Blob to install (exact/compatible); null when built from source. */
  digest: string | null;
  /** Final file name, compressed as the target kernel's modules are (e.g. hello.ko.xz). */
  installedFile: string;
  destLocation: string;
  /** Absolute path under the install tree. */
  installPath: string;
}

export interface PackagePlan {
  package: string;
  version: string;
  level: Level;
  /** Kernel release of the chosen prebuilt build (exact/compatible). */
  fromKernel: string | null;
  modules: PlannedModule[];
  signer: { signer?: string; keyId?: string } | null;
  signerStatus: SignerStatus | 'not-applicable';
  /** Same bundle already installed for this kernel: nothing to do. */
  alreadyInstalled: boolean;
  selection: Selection;
  explanation: string[];
}

export interface Problem {
  code: number;
  message: string;
  details: string[];
}

export interface InstallPlan {
  bundle: { name: string; version: string; rootDigest: string; created: string; signer: string; signatureChecked: boolean };
  target: {
    kernel: string;
    arch: string;
    vermagic: string | null;
    symversSource: string | null;
    headersPresent: boolean;
    compilerPresent: boolean;
    compression: ModuleSuffix;
    signaturePolicy: SignaturePolicy;
    signatureRequired: boolean | null;
  };
  packages: PackagePlan[];
  problems: Problem[];
  warnings: string[];
}

export interface PlanState {
  /** Newest installed bundle per package (anti-rollback). */
  receipts: Map<string, Receipt>;
  /** Install path without compression suffix → module that installed it (other DKMS modules). */
  owners: Map<string, string>;
  /** Bundle root digest installed per package on this target, if any. */
  installedDigest: Map<string, string>;
  /** Keys the target kernel trusts; null when that cannot be known (an image root, /proc/keys unreadable). */
  kernelKeys: KernelKey[] | null;
}

export interface PlanInputs {
  index: BundleIndex;
  signatureChecked: boolean;
  target: SelectionTarget & { symversSource: string | null; signaturePolicy: SignaturePolicy };
  compression: ModuleSuffix;
  installTree: string;
  /** DKMS's per-distro DEST_MODULE_LOCATION rewrite (installedLocation()). */
  location: (destLocation: string) => string;
  state: PlanState;
  allowDowngrade: boolean;
  requireTrustedSigner: boolean;
  force: boolean;
}

const stripCompression = (p: string) => p.replace(/\.ko(\.gz|\.xz|\.zst)?$/, '.ko');
const epoch = (iso: string) => Math.floor(Date.parse(iso) / 1000);

function planPackage(pkg: PackageSummary, all: PackageSummary[], inp: PlanInputs): PackagePlan {
  const { target } = inp;
  const selection = selectBinary(
    pkg.targets.flatMap((t) => candidatesFromTargetConfig(t.config)),
    target,
    {
      sourceAvailable: true,
      modules: pkg.config.modules.map((m) => m.name),
      // Modules of other packages of this bundle are installed in the same run.
      alsoProvided: all.filter((p) => p !== pkg).flatMap((p) => p.config.modules.map((m) => m.name)),
    },
  );
  const chosen = selection.chosen ? pkg.targets.find((t) => t.kernelRelease === selection.chosen!.kernel && t.arch === selection.chosen!.arch) : undefined;
  const place = (name: string, destLocation: string, digest: string | null): PlannedModule => {
    const installedFile = `${name}.ko${inp.compression}`;
    const installPath = `${inp.installTree}/${target.kernel}${inp.location(destLocation)}/${installedFile}`.replace(/\/+/g, '/');
    return { name, digest, installedFile, destLocation, installPath };
  };
  const modules = chosen
    ? chosen.modules.map((m) => place(m.name, m.destLocation, m.digest))
    : selection.level === 'source'
      ? pkg.config.modules.map((m) => place(m.name, m.destLocation, null))
      : [];
  const sig = chosen?.modules.find((m) => m.sig)?.sig ?? null;
  return {
    package: pkg.name,
    version: pkg.version,
    level: selection.level,
    fromKernel: chosen?.kernelRelease ?? null,
    modules,
    signer: sig ? { signer: sig.signer, keyId: sig.keyId } : null,
    signerStatus: chosen ? signerStatus(sig, inp.state.kernelKeys) : 'not-applicable',
    alreadyInstalled: !inp.force && inp.state.installedDigest.get(pkg.name) === inp.index.rootDigest,
    selection,
    explanation: explain(selection),
  };
}

export function planInstall(inp: PlanInputs): InstallPlan {
  const { index, target } = inp;
  const required = signatureRequired(target.signaturePolicy);
  const packages = index.packages.map((p) => planPackage(p, index.packages, inp));
  const problems: Problem[] = [];
  const warnings: string[] = [];

  for (const p of packages) {
    if (p.level === 'none') {
      problems.push({ code: ExitCode.NoMatch, message: `${p.package}/${p.version}: no build in the bundle fits kernel ${target.kernel} (${target.arch}), and it cannot be built from source here.`, details: p.explanation });
    }
    // Anti-rollback (TUF-style): never replace a newer installed bundle of the package with an older one.
    const r = inp.state.receipts.get(p.package);
    if (r && !inp.allowDowngrade) {
      const byVersion = compareVersions(r.version, p.version);
      const older = byVersion > 0 || (byVersion === 0 && r.createdEpoch > epoch(index.created));
      if (older) {
        problems.push({
          code: ExitCode.Downgrade,
          message: `${p.package}: the bundle holds ${p.version} built ${index.created}, older than the installed ${r.version} built ${r.created} (bundle ${r.rootDigest}); refusing to downgrade.`,
          details: ['Pass --allow-downgrade to install it anyway.'],
        });
      }
    }
    // Secure Boot: a module whose signer the kernel does not trust will not load under enforcement.
    if (p.signerStatus !== 'not-applicable' && p.signerStatus !== 'trusted' && required !== false) {
      const who = p.signer?.signer ? `"${p.signer.signer}"${p.signer.keyId ? ` (key ${p.signer.keyId})` : ''}` : 'nobody (unsigned)';
      const why = p.signerStatus === 'unknown' ? 'cannot tell whether the target kernel trusts' : 'the target kernel does not trust';
      const enforcement = required ? 'enforces module signatures' : 'may enforce module signatures (not known for this target)';
      const msg = `${p.package}: the kernel ${enforcement}, and kbundle ${why} the modules' signer ${who}.`;
      if (inp.requireTrustedSigner) problems.push({ code: ExitCode.UntrustedSigner, message: msg, details: ['Enrol the signer certificate (mokutil --import CERT.der, then reboot and confirm), see docs/installer.md.'] });
      else warnings.push(`${msg} Enrol it with mokutil --import (docs/installer.md) or the modules will not load.`);
    }
  }

  // Files another module already installed (or another package of this bundle claims).
  const claimed = new Map<string, string>();
  for (const p of packages) {
    for (const m of p.modules) {
      const key = stripCompression(m.installPath);
      const owner = inp.state.owners.get(key) ?? claimed.get(key);
      if (owner && owner !== p.package) {
        problems.push({ code: ExitCode.FileConflict, message: `${p.package}: ${m.installPath} is already installed by module ${owner}; refusing to overwrite another module's files.`, details: [`Remove ${owner} first (kbundle remove ${owner}/<version> -k ${target.kernel}).`] });
      }
      claimed.set(key, p.package);
    }
  }
  for (const p of packages) if (p.selection.chosen) for (const w of p.selection.chosen.warnings) warnings.push(`${p.package}: ${JSON.stringify(w)}`);

  return {
    bundle: { name: index.name, version: index.version, rootDigest: index.rootDigest, created: index.created, signer: index.signer.keyId, signatureChecked: inp.signatureChecked },
    target: {
      kernel: target.kernel,
      arch: target.arch,
      vermagic: target.vermagic,
      symversSource: target.symversSource,
      headersPresent: target.headersPresent,
      compilerPresent: target.compilerPresent,
      compression: inp.compression,
      signaturePolicy: target.signaturePolicy,
      signatureRequired: required,
    },
    packages,
    problems,
    warnings,
  };
}

/** Human-readable plan: one block per package, the winning step first. */
export function formatPlan(plan: InstallPlan): string[] {
  const t = plan.target;
  const out = [
    `bundle ${plan.bundle.name} ${plan.bundle.version} (${plan.bundle.rootDigest}), signed by ${plan.bundle.signer}${plan.bundle.signatureChecked ? '' : ' (signature NOT checked: --insecure)'}`,
    `target ${t.kernel} (${t.arch}); symvers ${t.symversSource ?? 'not found'}; headers ${t.headersPresent ? 'present' : 'absent'}; compiler ${t.compilerPresent ? 'present' : 'absent'}; module compression ${t.compression || 'none'}; signatures ${t.signatureRequired === null ? 'maybe enforced' : t.signatureRequired ? 'enforced' : 'not enforced'}`,
  ];
  for (const p of plan.packages) {
    const step = p.level === 'exact' || p.level === 'compatible' ? `${p.level} (binary built for ${p.fromKernel})` : p.level === 'source' ? 'source (build from the included source)' : 'none';
    out.push(`${p.package}/${p.version}: ${step}${p.alreadyInstalled ? ' — already installed from this bundle' : ''}`);
    for (const m of p.modules) out.push(`  ${m.name} -> ${m.installPath}`);
    for (const l of p.explanation.slice(1)) out.push(`  ${l}`);
  }
  for (const w of plan.warnings) out.push(`warning: ${w}`);
  for (const pr of plan.problems) out.push(`refused: ${pr.message}`);
  return out;
}

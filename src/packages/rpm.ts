/**
 * mkrpm (a noarch `<m>-dkms` RPM whose scripts hand the source to the DKMS
 * provider, plus `kmod-<m>` binary RPMs per kernel, the Red Hat kmod way) and
 * mkkmp (SUSE Kernel Module Packages). Spec files are generated here and
 * built by the real rpmbuild with every reproducibility switch rpm has.
 */
import { mkdir, readdir, cp } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ModuleSuffix } from '../kmod/compression.js';
import { KbundleError } from '../util/errors.js';
import { withStage, checkOutputs, normalizeTree, packageName, placeModule, publish, rpmDate, writeText } from './common.js';
import { ExitCode } from '../util/exit-codes.js';
import type { KernelBinaries, PackageInput } from './input.js';
import { requireTools, runTool } from './tools.js';
import type { Output } from './deb.js';

export interface RpmMeta {
  packager: string;
  /** RPM Release of every package (`1`). */
  release: string;
  compression: (kernel: string) => Promise<ModuleSuffix>;
}

/** RPM's version rule (no `-`, which separates version from release). */
export function rpmVersion(v: string): string {
  if (!/^[A-Za-z0-9._+~^]+$/.test(v)) throw new KbundleError(`version "${v}" is not an RPM version ([A-Za-z0-9._+~^], no hyphen).`, ExitCode.BadOption);
  return v;
}

/** A kernel release as an RPM release/version part: hyphens become underscores. */
const rpmSafe = (s: string) => s.replace(/-/g, '_');

/**
 * `Provides: kernel-modules >= X`, what Anaconda's dd_list matches against
 * the installer's kernel. An EVR holds one hyphen (version-release), so
 * any further hyphen of the release becomes `_`.
 */
export function kernelModulesEvr(kernel: string): string {
  const i = kernel.indexOf('-');
  return i < 0 ? kernel : `${kernel.slice(0, i)}-${rpmSafe(kernel.slice(i + 1))}`;
}

/** SUSE flavour and base of a kernel release: `5.14.21-150500.55.7-default` → default, `5.14.21-150500.55.7`. */
export function kmpFlavor(kernel: string): { flavor: string; base: string } {
  const i = kernel.lastIndexOf('-');
  if (i < 0) return { flavor: 'default', base: kernel };
  return { flavor: kernel.slice(i + 1).toLowerCase(), base: kernel.slice(0, i) };
}

const RPM_ARCH: Record<string, string> = { x86_64: 'x86_64', i386: 'i686', i686: 'i686', aarch64: 'aarch64', arm64: 'aarch64', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
export function rpmArch(arch: string): string {
  const a = RPM_ARCH[arch];
  if (!a) throw new KbundleError(`no RPM architecture for ${arch}.`, ExitCode.BadOption);
  return a;
}

export interface SpecPlan {
  name: string;
  version: string;
  release: string;
  arch: string;
  spec: string;
  /** Staged buildroot content to copy: filled in by the builder. */
  fill: (buildroot: string) => Promise<void>;
}

export const rpmFileName = (p: Pick<SpecPlan, 'name' | 'version' | 'release' | 'arch'>) => `${p.name}-${p.version}-${p.release}.${p.arch}.rpm`;

function preamble(p: { name: string; version: string; release: string; summary: string; packager: string }): string[] {
  return [
    // No debuginfo, no stripping, no brp scripts: they would strip the module signatures or add host-dependent files.
    '%global debug_package %{nil}',
    '%global __os_install_post %{nil}',
    '%global __spec_install_post %{nil}',
    '%global _build_id_links none',
    '%global _binary_payload w9.gzdio',
    `Name: ${p.name}`,
    `Version: ${p.version}`,
    `Release: ${p.release}`,
    `Summary: ${p.summary}`,
    'License: GPL-2.0-only',
    'Group: System Environment/Kernel',
    `Packager: ${p.packager}`,
    `Vendor: ${p.packager.replace(/\s*<.*$/, '')}`,
  ];
}

const tail = (epoch: number, packager: string, version: string, release: string, text: string) => ['', '%changelog', `* ${rpmDate(epoch)} ${packager} - ${version}-${release}`, `- ${text}`, ''];

export function dkmsRpmPlan(input: PackageInput, meta: RpmMeta): SpecPlan {
  const name = `${packageName(input.module)}-dkms`;
  const version = rpmVersion(input.version);
  const dir = `/usr/src/${input.module}-${input.version}`;
  const spec = [
    ...preamble({ name, version, release: meta.release, summary: `Source of the ${input.module} kernel module, built by DKMS`, packager: meta.packager }),
    'BuildArch: noarch',
    'Requires: dkms',
    'Requires(post): dkms',
    'Requires(preun): dkms',
    '',
    '%description',
    `The source code of the ${input.module} ${input.version} kernel module. Installing`,
    'this package adds it to DKMS, which builds and installs it for the installed',
    'kernels (dkms, or kbundle as the system dkms).',
    '',
    '%install',
    'cp -a %{kbundle_stage}/. %{buildroot}/',
    '',
    '%post',
    `if [ -x /usr/lib/dkms/common.postinst ]; then`,
    `    /usr/lib/dkms/common.postinst '${input.module}' '${input.version}' || :`,
    'else',
    `    dkms add -m '${input.module}' -v '${input.version}' --rpm_safe_upgrade || :`,
    `    dkms install -m '${input.module}' -v '${input.version}' || :`,
    'fi',
    '',
    '%preun',
    `dkms remove -m '${input.module}' -v '${input.version}' --all --rpm_safe_upgrade || :`,
    '',
    '%files',
    '%defattr(-,root,root,-)',
    dir,
    ...tail(input.epoch, meta.packager, version, meta.release, "Packaged by kbundle mkrpm."),
  ].join('\n');
  return {
    name,
    version,
    release: meta.release,
    arch: 'noarch',
    spec,
    fill: async (br) => {
      await mkdir(join(br, 'usr/src'), { recursive: true });
      await cp(input.sourceDir, join(br, dir.slice(1)), { recursive: true, verbatimSymlinks: true });
    },
  };
}

async function fillModules(k: KernelBinaries, dir: string, ext: ModuleSuffix): Promise<string[]> {
  const out: string[] = [];
  for (const m of k.modules) out.push(basename(await placeModule(m, dir, ext)));
  return out;
}

/** Red Hat kmod: `kmod-<m>-<v>-<rel>.<kernel>.<arch>.rpm`, modules in /lib/modules/<k>/extra/<m>/. */
export function kmodRpmPlan(input: PackageInput, k: KernelBinaries, meta: RpmMeta, files: string[]): SpecPlan {
  const pkg = packageName(input.module);
  const name = `kmod-${pkg}`;
  const version = rpmVersion(input.version);
  const release = `${meta.release}.${rpmSafe(k.kernel)}`;
  const dir = `/lib/modules/${k.kernel}/extra/${pkg}`;
  const depmod = `depmod -a ${k.kernel} || :`;
  const weak = (op: string) => [
    'if [ -x /usr/sbin/weak-modules ]; then',
    `    printf '%s\\n' ${files.map((f) => `'${dir}/${f}'`).join(' ')} | /usr/sbin/weak-modules ${op} || :`,
    'fi',
  ];
  const spec = [
    ...preamble({ name, version, release, summary: `Kernel modules ${input.module} for Linux ${k.kernel}`, packager: meta.packager }),
    `Provides: kernel-modules >= ${kernelModulesEvr(k.kernel)}`,
    `Provides: ${pkg}-kmod = %{version}-%{release}`,
    `Conflicts: ${pkg}-dkms`,
    '',
    '%description',
    `Prebuilt, signed ${input.module} ${input.version} kernel modules for Linux ${k.kernel}`,
    `(${k.arch}), for hosts without a compiler and for driver update disks.`,
    '',
    '%install',
    'cp -a %{kbundle_stage}/. %{buildroot}/',
    '',
    '%post',
    depmod,
    ...weak('--add-modules'),
    '',
    '%postun',
    `if [ -d /lib/modules/${k.kernel} ]; then`,
    `    ${depmod}`,
    'fi',
    '',
    '%files',
    '%defattr(-,root,root,-)',
    dir,
    ...tail(input.epoch, meta.packager, version, release, "Packaged by kbundle mkrpm."),
  ].join('\n');
  return { name, version, release, arch: rpmArch(k.arch), spec, fill: async () => undefined };
}

/** SUSE KMP: `<m>-kmp-<flavor>-<v>_k<base>-<rel>.<arch>.rpm`, modules in /lib/modules/<k>/updates/ (weak-modules2's place). */
export function kmpPlan(input: PackageInput, k: KernelBinaries, meta: RpmMeta, files: string[]): SpecPlan {
  const pkg = packageName(input.module);
  const { flavor, base } = kmpFlavor(k.kernel);
  const name = `${pkg}-kmp-${flavor}`;
  const version = `${rpmVersion(input.version)}_k${rpmSafe(base)}`;
  const dir = `/lib/modules/${k.kernel}/updates`;
  const spec = [
    ...preamble({ name, version, release: meta.release, summary: `Kernel module package ${input.module} for Linux ${k.kernel}`, packager: meta.packager }),
    'Provides: multiversion(kernel)',
    `Provides: ${pkg}-kmp = ${rpmVersion(input.version)}`,
    `Enhances: kernel-${flavor}`,
    `Conflicts: ${pkg}-dkms`,
    '',
    '%description',
    `Prebuilt, signed ${input.module} ${input.version} kernel modules for Linux ${k.kernel}`,
    `(${k.arch}), as a SUSE Kernel Module Package.`,
    '',
    '%install',
    'cp -a %{kbundle_stage}/. %{buildroot}/',
    '',
    '%post',
    'if [ -x /usr/lib/module-init-tools/weak-modules2 ]; then',
    '    /usr/lib/module-init-tools/weak-modules2 --add-kmp %{name}-%{version}-%{release} || :',
    'else',
    `    depmod -a ${k.kernel} || :`,
    'fi',
    '',
    '%postun',
    'if [ -x /usr/lib/module-init-tools/weak-modules2 ]; then',
    '    /usr/lib/module-init-tools/weak-modules2 --remove-kmp %{name}-%{version}-%{release} || :',
    `elif [ -d /lib/modules/${k.kernel} ]; then`,
    `    depmod -a ${k.kernel} || :`,
    'fi',
    '',
    '%files',
    '%defattr(-,root,root,-)',
    ...files.map((f) => `${dir}/${f}`),
    ...tail(input.epoch, meta.packager, version, meta.release, "Packaged by kbundle mkkmp."),
  ].join('\n');
  return { name, version, release: meta.release, arch: rpmArch(k.arch), spec, fill: async () => undefined };
}

/** rpmbuild -bb of one spec, in a private topdir; returns the .rpm path inside it. */
export async function rpmbuild(stage: string, plan: SpecPlan, buildroot: string, epoch: number): Promise<string> {
  requireTools('rpmbuild');
  const top = join(stage, `top-${rpmFileName(plan)}`);
  for (const d of ['SPECS', 'RPMS', 'BUILD', 'BUILDROOT', 'SOURCES', 'SRPMS']) await mkdir(join(top, d), { recursive: true });
  const spec = join(top, 'SPECS', `${plan.name}.spec`);
  await writeText(spec, `${plan.spec}\n`);
  await normalizeTree(buildroot, epoch);
  await runTool(
    'rpmbuild',
    [
      '-bb',
      '--quiet',
      '--target',
      plan.arch,
      '--define', `_topdir ${top}`,
      '--define', `kbundle_stage ${buildroot}`,
      '--define', '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
      '--define', 'use_source_date_epoch_as_buildtime 1',
      '--define', 'clamp_mtime_to_source_date_epoch 1',
      '--define', '_buildhost reproducible',
      '--define', '_dbpath ' + join(top, 'db'),
      spec,
    ],
    { epoch, cwd: top, env: { HOME: top } },
  );
  const rpms = join(top, 'RPMS');
  const found = (await readdir(rpms)).filter((n) => n.endsWith('.rpm'));
  if (found.length !== 1 || found[0] !== rpmFileName(plan)) throw new KbundleError(`rpmbuild wrote ${found.join(', ') || 'nothing'}, expected ${rpmFileName(plan)}.`, ExitCode.ToolFailed);
  return join(rpms, found[0]);
}

/** Builds the binary RPMs (kmod or KMP) of every kernel into `stage`; returns their paths there. */
export async function buildBinaryRpms(stage: string, input: PackageInput, meta: RpmMeta, kind: 'kmod' | 'kmp'): Promise<string[]> {
  const out: string[] = [];
  for (const k of input.kernels) {
    const pkg = packageName(input.module);
    const br = join(stage, `root-${kind}-${k.kernel}-${k.arch}`);
    const dir = kind === 'kmod' ? join(br, 'lib/modules', k.kernel, 'extra', pkg) : join(br, 'lib/modules', k.kernel, 'updates');
    const files = await fillModules(k, dir, await meta.compression(k.kernel));
    const plan = kind === 'kmod' ? kmodRpmPlan(input, k, meta, files) : kmpPlan(input, k, meta, files);
    out.push(await rpmbuild(stage, plan, br, input.epoch));
  }
  return out;
}

/** Names mkrpm/mkkmp will write (for the exists check before any work). */
export function plannedNames(input: PackageInput, meta: RpmMeta, kind: 'dkms+kmod' | 'kmp'): string[] {
  if (kind === 'kmp') return input.kernels.map((k) => rpmFileName(kmpPlan(input, k, meta, [])));
  return [rpmFileName(dkmsRpmPlan(input, meta)), ...input.kernels.map((k) => rpmFileName(kmodRpmPlan(input, k, meta, [])))];
}

/** mkrpm: the `<m>-dkms` noarch RPM, and a `kmod-<m>` RPM for each kernel of the input. */
export async function mkrpm(input: PackageInput, meta: RpmMeta, out: Output): Promise<string[]> {
  requireTools('rpmbuild');
  const names = plannedNames(input, meta, 'dkms+kmod');
  await checkOutputs(names.map((n) => join(out.outDir, n)), out.force);
  return withStage('kbundle-rpm-', async (stage) => {
    const plan = dkmsRpmPlan(input, meta);
    const br = join(stage, 'root-dkms');
    await plan.fill(br);
    const built = [await rpmbuild(stage, plan, br, input.epoch), ...(await buildBinaryRpms(stage, input, meta, 'kmod'))];
    return publish(built.map((b) => ({ from: b, to: join(out.outDir, basename(b)) })));
  });
}

/** mkkmp: one SUSE KMP per kernel. */
export async function mkkmp(input: PackageInput, meta: RpmMeta, out: Output): Promise<string[]> {
  requireTools('rpmbuild');
  const names = plannedNames(input, meta, 'kmp');
  await checkOutputs(names.map((n) => join(out.outDir, n)), out.force);
  return withStage('kbundle-rpm-', async (stage) => {
    const built = await buildBinaryRpms(stage, input, meta, 'kmp');
    return publish(built.map((b) => ({ from: b, to: join(out.outDir, basename(b)) })));
  });
}

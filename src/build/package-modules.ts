/**
 * The packaging half of a build (build-target.ts): how built modules become
 * installable files for one kernel — strip -> sign -> compress each one into
 * the staging dir, with the signing key and compression that kernel asks for
 * — and the cache key of that result.
 */
import { existsSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { EvaluatedConf } from '../conf/types.js';
import { compressModule, detectKernelCompression, type ModuleSuffix } from '../kmod/compression.js';
import { stripDebug } from '../kmod/strip.js';
import { signBuiltModule } from './sign-step.js';
import { type ModuleRef, type Target } from '../tree/paths.js';
import { type BuildRecord, type BuiltModuleRecord } from '../tree/records.js';
import { sha256, sha256File } from '../util/fs.js';
import { type RunContext } from '../lifecycle/context.js';
import { MakeLog } from './make-log.js';
import { resolveSigning, type SigningDecision } from './signing.js';

/** Where make leaves the i-th BUILT_MODULE, relative to the build dir. */
export function builtPath(conf: EvaluatedConf, i: number): string {
  const mod = conf.modules[i]!;
  return `${mod.builtLocation}${mod.builtName}.ko`;
}

export interface PackageDirs {
  rawDir: string;
  staging: string;
  log: MakeLog;
}

/** How built modules become installable files for this kernel: signing key and compression. */
export interface Packaging {
  signing: SigningDecision;
  compression: ModuleSuffix;
}

export async function planPackaging(ctx: RunContext, t: Target, ksrc: string): Promise<Packaging> {
  const signing = await resolveSigning({
    mokSigningKey: ctx.framework.mokSigningKey,
    mokCertificate: ctx.framework.mokCertificate,
    signFile: ctx.framework.signFile,
    signHash: ctx.framework.signHash,
    dkmsTree: ctx.roots.dkmsTree,
    kernelSourceDir: ksrc,
    say: ctx.say,
  });
  if (!signing.plan && signing.reason) ctx.warn(signing.reason);
  if (signing.plan && signing.generated) ctx.say(`Signing key: ${signing.plan.keyPath}\nPublic certificate (MOK): ${signing.plan.certPath}`);
  return { signing, compression: await detectKernelCompression(ctx.roots.installTree, t.kernel) };
}

/** Cache key of the packaged result: the build key plus everything packaging depends on. */
export async function packagedKey(buildKey: string, conf: EvaluatedConf, p: Packaging): Promise<string> {
  const plan = p.signing.plan;
  const signer = plan ? [await sha256File(plan.keyPath), await sha256File(plan.certPath), plan.hash] : ['unsigned'];
  return sha256(JSON.stringify(['packaged-v1', buildKey, signer, p.compression, conf.modules.map((mod) => [mod.destName, mod.strip])]));
}

/** strip -> sign -> compress each built module into <staging>/module/<dest>.ko[.ext]. */
export async function packageModules(ctx: RunContext, m: ModuleRef, t: Target, conf: EvaluatedConf, d: PackageDirs, p: Packaging): Promise<BuildRecord> {
  const { signing, compression } = p;
  const modules: BuiltModuleRecord[] = [];
  let signer: BuildRecord['signed'] = null;
  for (let i = 0; i < conf.modules.length; i++) {
    const spec = conf.modules[i]!;
    const out = join(d.staging, 'module', `${spec.destName}.ko`);
    await copyFile(join(d.rawDir, builtPath(conf, i)), out);
    if (spec.strip) await stripDebug(out);
    if (signing.plan) {
      signer = await signBuiltModule(out, signing.plan);
      d.log.note(`Signed ${basename(out)} with ${signing.plan.keyPath} (${signing.plan.hash})`);
    }
    const final = compression ? await compressModule(out, compression) : out;
    modules.push({ destName: spec.destName, destLocation: spec.destLocation, file: basename(final), sha256: await sha256File(final) });
  }
  if (existsSync(join(d.rawDir, 'Module.symvers'))) await copyFile(join(d.rawDir, 'Module.symvers'), join(d.staging, 'module', 'Module.symvers'));
  return {
    format: 'kbundle-build-v1',
    module: m.module,
    version: m.version,
    kernel: t.kernel,
    arch: t.arch,
    modules,
    cacheKey: null,
    fromCache: false,
    signed: signer,
    compression,
  };
}

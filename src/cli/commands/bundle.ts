/** `kbundle bundle ...`: build, verify, list, merge bundles; make keys. */
import { Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { KbundleError } from '../../util/errors.js';
import { ExitCode } from '../../util/exit-codes.js';
import type { CommonOptions } from '../options.js';
import { makeProgress } from '../../progress/progress.js';
import { binaryColumns } from '../../arch/ls-columns.js';

type Runner = (a: (p: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;

interface BundleOptions {
  output?: string;
  shard?: string;
  keepGoing?: boolean;
  j?: string;
  cache: boolean;
  cacheDir?: string;
  key: string[];
  keyring?: string;
  signKey?: string;
  insecure?: boolean;
  json?: boolean;
  quiet?: boolean;
  force?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function defaultCacheDir(): string {
  return resolve(process.env.KBUNDLE_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kbundle'));
}

/** Public keys named by --key (repeatable) and every *.pub in --keyring. */
export async function trustedKeysFrom(o: Pick<BundleOptions, 'key' | 'keyring'>) {
  const { loadPublicKey } = await import('../../sign/minisign.js');
  const files = [...o.key];
  if (o.keyring) {
    if (!existsSync(o.keyring)) throw new KbundleError(`--keyring ${o.keyring} does not exist.`, ExitCode.BadKey);
    files.push(...readdirSync(o.keyring).filter((n) => n.endsWith('.pub')).sort().map((n) => join(o.keyring!, n)));
  }
  return Promise.all(files.map((f) => loadPublicKey(resolve(f))));
}

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u ? v.toFixed(1) : v} ${units[u]}`;
}

export function registerBundle(program: Command, run: Runner): Command {
  const bundle = program.command('bundle').description('reproducible, signed, content-addressed module bundles');
  const r = (fn: (p: string[], o: BundleOptions) => Promise<number>) => run(fn as unknown as (p: string[], o: CommonOptions) => Promise<number>);

  bundle
    .command('build')
    .description('build every kernel x arch of a kbundle.yaml (concurrently, through the build cache) and write one signed bundle')
    .argument('[manifest]', 'the manifest', 'kbundle.yaml')
    .option('-o, --output <file>', 'bundle file (default: manifest "output", else <name>-<version>.kbundle)')
    .option('--shard <I/N>', 'build only slice I of N of the matrix (merge the slices with `bundle merge`)')
    .option('--keep-going', 'write a bundle without the kernels that failed (they are listed in its metadata)')
    .option('-j <jobs>', 'make job budget shared by concurrent builds (default: nproc)')
    .option('--no-cache', 'do not use the build cache')
    .option('--cache-dir <dir>', 'build cache (default $KBUNDLE_CACHE_DIR, else ~/.cache/kbundle)')
    .option('-q, --quiet', 'no progress output')
    .option('--json', 'print the result as JSON')
    .action(
      r(async (p, o) => {
        const { buildBundle } = await import('../../bundle-build/build-bundle.js');
        const { parseShard } = await import('../../bundle-build/matrix.js');
        const shard = o.shard ? parseShard(o.shard) : null;
        if (typeof shard === 'string') throw new KbundleError(shard, ExitCode.Usage);
        const jobs = o.j !== undefined ? Number(o.j) : availableParallelism();
        if (!Number.isInteger(jobs) || jobs < 0) throw new KbundleError(`-j needs a whole number >= 0, got "${o.j}".`, ExitCode.Usage);
        const res = await buildBundle({
          manifestPath: resolve(p[0] ?? 'kbundle.yaml'),
          output: o.output,
          shard,
          keepGoing: Boolean(o.keepGoing),
          jobs,
          noCache: !o.cache,
          cacheDir: resolve(o.cacheDir ?? defaultCacheDir()),
          progress: makeProgress(Boolean(o.quiet) || Boolean(o.json)),
          say: (l) => {
            if (!o.quiet && !o.json) process.stdout.write(`${l}\n`);
          },
          warn: (l) => process.stderr.write(`Warning: ${l}\n`),
        });
        if (o.json) {
          // The file's own sha256 is hashed here, from the finished file, not while packing (bundle-file.ts says why).
          const { digestFile } = await import('../../bundle/model/digest.js');
          const fileDigest = (await digestFile(res.file)).digest;
          process.stdout.write(`${JSON.stringify({ file: res.file, digest: res.write.digest, fileDigest, size: res.write.size, built: res.built, missing: res.missing }, null, 2)}\n`);
        }
        return 0;
      }),
    );

  bundle
    .command('check')
    .description('validate a kbundle.yaml and show what `bundle build` would build (kernels resolved against installed headers); builds nothing')
    .argument('[manifest]', 'the manifest', 'kbundle.yaml')
    .option('--json', 'print the plan as JSON')
    .addHelpText('after', '\nExit codes: 0 OK; 34 bad manifest (file:line:col); 36 a kernel pattern matches no installed headers;\n39 a key file is missing; 77 dkms.conf excludes a target (BUILD_EXCLUSIVE_*); 4/8 a source\'s dkms.conf is bad.')
    .action(
      r(async (p, o) => {
        const { checkManifest, checkExitCode, checkToText } = await import('../../manifest/check.js');
        const res = await checkManifest(resolve(p[0] ?? 'kbundle.yaml'));
        process.stdout.write(o.json ? `${JSON.stringify(res, null, 2)}\n` : checkToText(res));
        return checkExitCode(res);
      }),
    );

  bundle
    .command('verify')
    .description('check the signature (against --key/--keyring), every digest and size, and the layout; exit code per failure kind')
    .argument('<file>')
    .option('--key <pub>', 'trusted public key (minisign format; repeatable)', collect, [])
    .option('--keyring <dir>', 'directory of trusted *.pub keys')
    .option('--json', 'print the verified index as JSON')
    .action(
      r(async (p, o) => {
        const { verifyBundle } = await import('../../bundle/read/open.js');
        const trustedKeys = await trustedKeysFrom(o);
        if (!trustedKeys.length) throw new KbundleError('bundle verify needs a trusted key: --key FILE.pub or --keyring DIR.', ExitCode.UntrustedKey);
        const idx = await verifyBundle(resolve(p[0]!), { trustedKeys });
        if (o.json) process.stdout.write(`${JSON.stringify({ ok: true, rootDigest: idx.rootDigest, signer: idx.signer.keyId }, null, 2)}\n`);
        else process.stdout.write(`${p[0]}: OK (signed by ${idx.signer.keyId}; ${idx.packages.length} package(s), ${idx.packages.reduce((n, q) => n + q.targets.length, 0)} target(s), every digest verified; root ${idx.rootDigest})\n`);
        return 0;
      }),
    );

  bundle
    .command('ls')
    .description('list packages, kernels, arches, modules, signer and sizes')
    .argument('<file>')
    .option('--key <pub>', 'trusted public key (repeatable); without a key the signature is NOT checked and the listing says so', collect, [])
    .option('--keyring <dir>', 'directory of trusted *.pub keys')
    .option('--json', 'JSON for scripts')
    .action(
      r(async (p, o) => {
        const { verifyBundle } = await import('../../bundle/read/open.js');
        const trustedKeys = await trustedKeysFrom(o);
        const idx = await verifyBundle(resolve(p[0]!), { trustedKeys, skipSignature: trustedKeys.length === 0 });
        const signatureChecked = trustedKeys.length > 0;
        const rows = idx.packages.flatMap((pkg) =>
          pkg.targets.map((t) => ({
            package: pkg.name,
            version: pkg.version,
            kernel: t.kernelRelease,
            arch: t.arch,
            modules: t.modules.map((m) => m.file),
            size: t.modules.reduce((n, m) => n + m.size, 0),
            signer: t.modules[0]?.sig?.signer ?? null,
            ...binaryColumns(t),
          })),
        );
        if (o.json) {
          process.stdout.write(
            `${JSON.stringify({ name: idx.name, version: idx.version, created: idx.created, rootDigest: idx.rootDigest, bundleSigner: idx.signer.keyId, signatureChecked, metadata: idx.metadata, kernels: idx.kernels, arches: idx.arches, blobBytes: idx.blobBytes, sources: idx.packages.map((q) => ({ package: q.name, version: q.version, size: q.source.size })), targets: rows }, null, 2)}\n`,
          );
          return 0;
        }
        const out: string[] = [];
        out.push(`${idx.name} ${idx.version}  created ${idx.created}  ${human(idx.blobBytes)}`);
        out.push(`bundle signed by ${idx.signer.keyId}${signatureChecked ? ' (verified)' : ' (NOT verified: no --key given)'}`);
        for (const [k, v] of Object.entries(idx.metadata)) out.push(`${k}: ${v}`);
        for (const q of idx.packages) out.push(`source ${q.name}/${q.version}: ${human(q.source.size)}`);
        const header = ['PACKAGE', 'KERNEL', 'ARCH', 'MODULES', 'ELF', 'SIZE', 'MODULE SIGNER', 'VERMAGIC'];
        const table = [header, ...rows.map((x) => [`${x.package}/${x.version}`, x.kernel, x.arch, x.modules.join(','), x.elf, human(x.size), x.signer ?? '-', x.vermagic.trim()])];
        const widths = header.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
        for (const row of table) out.push(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
        process.stdout.write(`${out.join('\n')}\n`);
        return 0;
      }),
    );

  bundle
    .command('merge')
    .description('combine shard bundles (bundle build --shard) into the bundle a single build would give')
    .argument('<files...>')
    .requiredOption('-o, --output <file>', 'merged bundle')
    .requiredOption('--sign-key <key>', 'bundle secret key (the manifest\'s bundleKey) to sign the merged index')
    .option('--key <pub>', 'trusted key for the shards (default: the public half of --sign-key)', collect, [])
    .option('--keyring <dir>', 'directory of trusted *.pub keys')
    .action(
      r(async (p, o) => {
        const { mergeBundles } = await import('../../bundle/write/merge.js');
        const { loadSecretKey } = await import('../../sign/minisign.js');
        const signingKey = await loadSecretKey(resolve(o.signKey!));
        const extra = await trustedKeysFrom(o);
        const res = await mergeBundles(p.map((f) => resolve(f)), resolve(o.output!), { trustedKeys: [signingKey.publicKey, ...extra], signingKey });
        process.stdout.write(`Wrote ${resolve(o.output!)} (root ${res.digest})\n`);
        return 0;
      }),
    );

  bundle
    .command('keygen')
    .description('create a bundle signing key pair: <name>.key (PKCS#8 PEM, keep secret) and <name>.pub (minisign public key)')
    .argument('<name>', 'path prefix, e.g. keys/vendor')
    .option('--force', 'overwrite existing files')
    .action(
      r(async (p, o) => {
        const { generateKeys } = await import('../../sign/minisign.js');
        const base = resolve(p[0]!);
        for (const f of [`${base}.key`, `${base}.pub`]) {
          if (existsSync(f) && !o.force) throw new KbundleError(`${f} exists; use --force to overwrite.`, ExitCode.General);
        }
        const keys = generateKeys();
        await writeFile(`${base}.key`, keys.secretKeyPem, { mode: 0o600 });
        await writeFile(`${base}.pub`, keys.publicKeyText);
        process.stdout.write(`${base}.key\n${base}.pub (key id ${keys.keyId})\n`);
        return 0;
      }),
    );
  return bundle;
}

/** `kbundle bundle push` / `bundle pull`: bundles through an OCI registry (src/registry/, docs/registry.md). */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { KbundleError } from '../../util/errors.js';
import { ExitCode } from '../../util/exit-codes.js';
import type { CommonOptions } from '../options.js';

type Runner = (a: (p: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;

interface RegistryOptions {
  key: string[];
  keyring?: string;
  plainHttp?: boolean;
  username?: string;
  passwordStdin?: boolean;
  chunkSize?: string;
  output?: string;
  json?: boolean;
  quiet?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** `--chunk-size` as bytes: a whole number with an optional K/M/G (binary) suffix. */
export function parseSize(text: string): number | null {
  const m = /^([0-9]+)\s*([kmg]i?b?)?$/i.exec(text.trim());
  if (!m) return null;
  const unit = (m[2] ?? '').toLowerCase()[0];
  const n = Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1 << 20 : unit === 'g' ? 1 << 30 : 1);
  return Number.isSafeInteger(n) ? n : null;
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) parts.push(c);
  // One trailing newline is the terminator `echo` and files add, not part of the password.
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

/** -u USER --password-stdin, else KBUNDLE_REGISTRY_USERNAME / KBUNDLE_REGISTRY_PASSWORD, else anonymous. */
async function credentialsFrom(o: RegistryOptions) {
  if (o.passwordStdin && !o.username) throw new KbundleError('--password-stdin needs -u USER.', ExitCode.Usage);
  if (o.username) {
    if (!o.passwordStdin) throw new KbundleError('-u USER needs --password-stdin (the password is read from standard input, never from the command line).', ExitCode.Usage);
    return { credentials: { username: o.username, password: await readStdin() }, origin: '-u/--password-stdin' };
  }
  const user = process.env.KBUNDLE_REGISTRY_USERNAME;
  const pass = process.env.KBUNDLE_REGISTRY_PASSWORD;
  if (user !== undefined || pass !== undefined) {
    if (!user || pass === undefined) throw new KbundleError('set both KBUNDLE_REGISTRY_USERNAME and KBUNDLE_REGISTRY_PASSWORD, or neither.', ExitCode.Usage);
    return { credentials: { username: user, password: pass }, origin: 'KBUNDLE_REGISTRY_USERNAME/PASSWORD' };
  }
  return { credentials: null, origin: 'none' };
}

const EXIT_HELP = `
Exit codes: 0 OK; 90 authentication failed; 91 not found; 92 registry protocol error;
93 digest mismatch from the registry; 94 network error; 95 bad REF; 96 denied;
97 not a kbundle bundle / no signature referrer; 30-46 the bundle itself (docs/exit-codes.md).`;

export function registerRegistry(bundle: Command, run: Runner): void {
  const r = (fn: (p: string[], o: RegistryOptions) => Promise<number>) => run(fn as unknown as (p: string[], o: CommonOptions) => Promise<number>);
  const common = (c: Command) =>
    c
      .option('--key <pub>', 'trusted public key (minisign format; repeatable); without a key the signature is NOT checked', collect, [])
      .option('--keyring <dir>', 'directory of trusted *.pub keys')
      .option('--plain-http', 'talk HTTP instead of HTTPS (a registry on loopback; credentials travel in the clear)')
      .option('-u, --username <user>', 'registry user (with --password-stdin)')
      .option('--password-stdin', 'read the password (or token) from standard input')
      .option('-q, --quiet', 'no progress output')
      .option('--json', 'print the result as JSON');

  common(
    bundle
      .command('push')
      .description('push a bundle file to an OCI registry: blobs the registry has are not sent again; the signature becomes a referrer of the bundle index')
      .argument('<file>', 'bundle file')
      .argument('<ref>', 'HOST[:PORT]/REPOSITORY[:TAG] (TAG defaults to the bundle version)'),
  )
    .option('--chunk-size <bytes>', 'upload blobs in chunks of this size (PATCH with Content-Range; e.g. 4M); default: one PUT per blob')
    .addHelpText('after', EXIT_HELP)
    .action(
      r(async (p, o) => {
        const [{ mustParseReference, isLoopback }, { pushBundle }, { trustedKeysFrom }] = await Promise.all([
          import('../../registry/reference.js'),
          import('../../registry/push.js'),
          import('./bundle.js'),
        ]);
        const ref = mustParseReference(p[1]!);
        const chunkSize = o.chunkSize === undefined ? 0 : parseSize(o.chunkSize);
        if (chunkSize === null || (o.chunkSize !== undefined && chunkSize < 1)) throw new KbundleError(`--chunk-size needs a size in bytes (e.g. 1048576, 512K, 4M), got "${o.chunkSize}".`, ExitCode.Usage);
        const say = quietSay(o);
        warnPlain(o, ref.registry, isLoopback);
        const res = await pushBundle(resolve(p[0]!), ref, { trustedKeys: await trustedKeysFrom(o), chunkSize, plainHttp: Boolean(o.plainHttp), credentials: await credentialsFrom(o), say });
        if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
        else if (!o.quiet) process.stdout.write(`Pushed ${res.reference}@${res.digest} (${res.blobs.pushed} of ${res.blobs.total} blobs, ${res.bytes.uploaded} of ${res.bytes.total} bytes sent)\n`);
        return 0;
      }),
    );

  common(
    bundle
      .command('pull')
      .description('pull a bundle from an OCI registry into a file: every digest checked, the file rebuilt byte for byte and verified before it is written')
      .argument('<ref>', 'HOST[:PORT]/REPOSITORY:TAG or HOST[:PORT]/REPOSITORY@sha256:DIGEST'),
  )
    .requiredOption('-o, --output <file>', 'bundle file to write')
    .addHelpText('after', EXIT_HELP)
    .action(
      r(async (p, o) => {
        const [{ mustParseReference, isLoopback }, { pullBundle }, { trustedKeysFrom }] = await Promise.all([
          import('../../registry/reference.js'),
          import('../../registry/pull.js'),
          import('./bundle.js'),
        ]);
        const ref = mustParseReference(p[0]!);
        const trustedKeys = await trustedKeysFrom(o);
        warnPlain(o, ref.registry, isLoopback);
        const res = await pullBundle(ref, resolve(o.output!), { trustedKeys, plainHttp: Boolean(o.plainHttp), credentials: await credentialsFrom(o), say: quietSay(o) });
        if (!trustedKeys.length) process.stderr.write('Warning: signature NOT checked (no --key given); the file is consistent with itself, not proven to come from its signer.\n');
        if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
        else if (!o.quiet) process.stdout.write(`Wrote ${res.file} (${res.size} bytes, root ${res.digest}${trustedKeys.length ? `, signed by ${res.signature.keyId}` : ''})\n`);
        return 0;
      }),
    );
}

function quietSay(o: RegistryOptions): (l: string) => void {
  return (l) => {
    if (!o.quiet && !o.json) process.stderr.write(`${l}\n`);
  };
}

function warnPlain(o: RegistryOptions, registry: string, isLoopback: (r: string) => boolean): void {
  if (o.plainHttp && !isLoopback(registry)) process.stderr.write(`Warning: --plain-http to ${registry}, which is not loopback: bundle and credentials travel unencrypted.\n`);
}

// Real bundles (built with the real CLI against real headers), real target
// trees and a byte-level snapshot of a scratch root, for the installer tests.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleBundle } from '../../src/bundle/write/assemble.js';
import { BlobStore } from '../../src/bundle/write/blob-store.js';
import { canonicalJsonBytes } from '../../src/bundle/model/canonical-json.js';
import { loadSecretKey } from '../../src/sign/minisign.js';
import { readEntries, rewriteTar } from '../helpers/bundles.js';
import { installedKernels } from '../helpers/kernels.js';
import { kbundle, makeScratch, REPO, seedKernelModule, sh, type Scratch } from '../helpers/scratch.js';

/** A 6.12 kernel with a full module tree (in-tree .ko.xz) on this machine. */
export const K612 = installedKernels().find((k) => k.startsWith('6.12.') && existsSync(`/lib/modules/${k}/kernel`)) ?? '6.12.117+deb12-amd64';

/**
 * Two 6.1 ABIs whose Module.symvers are byte-identical: a module built for the
 * first is kABI-compatible with the second (Debian's 6.1.0-55/-56 are such a
 * pair). Falls back to the two oldest when no such pair is installed, which
 * makes the compatible-pick tests fail loudly rather than pass vacuously.
 */
function compatiblePair(): [string, string] {
  const k61 = installedKernels().filter((k) => /^6\.1\.0-\d+-amd64$/.test(k));
  const symvers = (k: string) => {
    try {
      return readFileSync(`/lib/modules/${k}/build/Module.symvers`);
    } catch {
      return null;
    }
  };
  for (let i = 0; i < k61.length; i++) {
    for (let j = i + 1; j < k61.length; j++) {
      const a = symvers(k61[i]!);
      const b = symvers(k61[j]!);
      if (a && b && a.equals(b)) return [k61[i]!, k61[j]!];
    }
  }
  return [k61[0] ?? '6.1.0-55-amd64', k61[1] ?? '6.1.0-56-amd64'];
}
export const [K55, K56] = compatiblePair();
export const PUB = join(REPO, 'bundles/keys/example-bundle.pub');
export const SECRET = join(REPO, 'bundles/keys/example-bundle.key');
const KEYS = join(REPO, 'bundles/keys');

const work = mkdtempSync(join(tmpdir(), 'kbundle-inst-'));

/** `kbundle bundle build` of a source dir for the given kernels; memoised per (source, kernels, epoch). */
const built = new Map<string, string>();
export function buildBundle(kernels: string[], opts: { source?: string; epoch?: number; name?: string } = {}): string {
  const source = opts.source ?? join(REPO, 'bundles/hello-1.0');
  const epoch = opts.epoch ?? 1700000000;
  const key = `${source}|${kernels.join(',')}|${epoch}`;
  const hit = built.get(key);
  if (hit) return hit;
  const dir = mkdtempSync(join(work, 'b-'));
  const manifest = join(dir, 'kbundle.yaml');
  writeFileSync(
    manifest,
    [
      'apiVersion: kbundle/v1',
      `source: ${source}`,
      'kernels:',
      ...kernels.map((k) => `  - "${k}"`),
      'arches: [x86_64]',
      'signing:',
      `  moduleKey: ${KEYS}/example-module.key`,
      `  moduleCert: ${KEYS}/example-module.der`,
      '  hash: sha256',
      `bundleKey: ${KEYS}/example-bundle.key`,
      'compression:',
      '  level: 3',
      '',
    ].join('\n'),
  );
  const out = join(dir, `${opts.name ?? 'b'}.kbundle`);
  const r = kbundle(['bundle', 'build', manifest, '-o', out, '-q'], { SOURCE_DATE_EPOCH: String(epoch) });
  if (r.code !== 0) throw new Error(`bundle build failed (${r.code}): ${r.stderr}`);
  built.set(key, out);
  return out;
}

/**
 * A tiny module that says it is in-tree, built against a kernel's headers:
 * 6.1 here has headers only, and a target's vermagic comes from an in-tree
 * module (readTargetFacts), so the test target tree gets this one.
 */
const intree = new Map<string, string>();
export function intreeModule(kernel: string): string {
  const hit = intree.get(kernel);
  if (hit) return hit;
  const dir = mkdtempSync(join(work, 'intree-'));
  writeFileSync(join(dir, 'kbt_intree.c'), '#include <linux/module.h>\nMODULE_LICENSE("GPL");\nMODULE_INFO(intree, "Y");\n');
  writeFileSync(join(dir, 'Makefile'), 'obj-m += kbt_intree.o\n');
  const r = sh('make', ['-C', `/lib/modules/${kernel}/build`, `M=${dir}`, 'modules']);
  if (r.code !== 0) throw new Error(`building the in-tree stand-in failed: ${r.stderr}`);
  intree.set(kernel, join(dir, 'kbt_intree.ko'));
  return join(dir, 'kbt_intree.ko');
}

/** A scratch root with one kernel: headers linked, and an in-tree module to read the vermagic from. */
export function targetRoot(kernel: string): Scratch {
  const s = makeScratch([kernel], { withKernelModules: false });
  if (!seedKernelModule(s, kernel)) {
    mkdirSync(join(s.installTree, kernel, 'kernel/drivers/misc'), { recursive: true });
    cpSync(intreeModule(kernel), join(s.installTree, kernel, 'kernel/drivers/misc/kbt_intree.ko'));
  }
  return s;
}

export const trust = ['--trust', PUB];

/** Every path under dir with type, mode and content hash (symlinks by target): equal snapshots = byte-identical trees. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[p] = `link ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[p] = `dir ${st.mode.toString(8)}`;
        walk(p);
      } else out[p] = `file ${st.mode.toString(8)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}


const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/**
 * A *validly signed* bundle whose source layer is `plainTar` (zstd-compressed
 * here), declaring `declaredSize` as its uncompressed size: what a hostile or
 * buggy builder holding the key could ship. Re-assembled and re-signed with
 * the real writer's assembleBundle.
 */
export async function resignWithSource(file: string, out: string, plainTar: Buffer, declaredSize = plainTar.length): Promise<void> {
  const e = await readEntries(file);
  const blob = (d: string) => e.get(`blobs/sha256/${d.slice(7)}`)!;
  const top = JSON.parse(e.get('index.json')!.toString());
  const bundleDesc = top.manifests.find((m: { artifactType: string }) => m.artifactType === 'application/vnd.kbundle.bundle.v1');
  const bundleIndex = JSON.parse(blob(bundleDesc.digest).toString());
  const zst = spawnSync('zstd', ['-q', '-c', '-3'], { input: plainTar, maxBuffer: 1 << 28 }).stdout as Buffer;
  const store = await BlobStore.create(tmpdir());
  const manifests: Buffer[] = [];
  for (const d of bundleIndex.manifests) {
    const man = JSON.parse(blob(d.digest).toString());
    for (const l of man.layers) store.putBytes(blob(l.digest));
    store.putBytes(blob(man.config.digest));
    if (man.artifactType === 'application/vnd.kbundle.source.v1') {
      const cfg = JSON.parse(blob(man.config.digest).toString());
      cfg.source = { digest: sha(plainTar), size: declaredSize };
      const cfgBytes = canonicalJsonBytes(cfg);
      store.putBytes(cfgBytes);
      store.putBytes(zst);
      man.config = { ...man.config, digest: sha(cfgBytes), size: cfgBytes.length };
      man.layers[0] = {
        ...man.layers[0],
        digest: sha(zst),
        size: zst.length,
        annotations: { ...man.layers[0].annotations, 'org.kbundle.uncompressed.digest': sha(plainTar), 'org.kbundle.uncompressed.size': String(declaredSize) },
      };
    }
    manifests.push(canonicalJsonBytes(man));
  }
  await assembleBundle({ annotations: bundleIndex.annotations, manifests, store, key: await loadSecretKey(SECRET) }, out);
  await store.dispose();
}

/** A plain tar with hand-made headers (python's tarfile can make any entry type). */
export function craftTar(spec: string): Buffer {
  const r = spawnSync('python3', ['-c', `
import tarfile, io, sys
buf = io.BytesIO()
t = tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT)
def f(name, data=b'x', **kw):
    i = tarfile.TarInfo(name); i.size = len(data); i.mtime = 0
    for k, v in kw.items(): setattr(i, k, v)
    t.addfile(i, io.BytesIO(data) if i.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else None)
d = lambda name: f(name, b'', type=tarfile.DIRTYPE, mode=0o755)
${spec}
t.close()
sys.stdout.buffer.write(buf.getvalue())
`], { maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(String(r.stderr));
  return r.stdout as Buffer;
}

export { rewriteTar };

// Writing test manifests and reading blobs out of bundle files.
import { cpSync, createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import tar from 'tar-stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, sh } from './scratch.js';

export const EXAMPLE_KEYS = join(REPO, 'bundles/keys');
export const BUNDLE_PUB = join(EXAMPLE_KEYS, 'example-bundle.pub');

/** A project dir with the given module sources and a kbundle.yaml for the kernels. */
export function makeProject(sources: string[], kernels: string[], extra = ''): { dir: string; manifest: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kbundle-proj-'));
  for (const s of sources) cpSync(join(REPO, s), join(dir, s.split('/').pop()!), { recursive: true });
  cpSync(EXAMPLE_KEYS, join(dir, 'keys'), { recursive: true });
  const src = sources.length === 1 ? `source: ${sources[0]!.split('/').pop()}` : `sources:\n${sources.map((s) => `  - ${s.split('/').pop()}`).join('\n')}`;
  const manifest = join(dir, 'kbundle.yaml');
  writeFileSync(
    manifest,
    `apiVersion: kbundle/v1\n${src}\nkernels:\n${kernels.map((k) => `  - ${k}`).join('\n')}\narches: [x86_64]\nsigning:\n  moduleKey: keys/example-module.key\n  moduleCert: keys/example-module.der\n  hash: sha256\nbundleKey: keys/example-bundle.key\ncompression:\n  level: 3\nmetadata:\n  vendor: Test\n${extra}`,
  );
  return { dir, manifest };
}

export interface BlobInfo {
  digest: string;
  mediaType: string;
  path: string;
}

/** Unpacks a bundle tar and lists every blob with the media type its descriptor gives it. */
export function unpackBundle(file: string): { dir: string; blobs: BlobInfo[] } {
  const dir = mkdtempSync(join(tmpdir(), 'kbundle-unpack-'));
  mkdirSync(dir, { recursive: true });
  const r = sh('tar', ['-xf', file, '-C', dir]);
  if (r.code !== 0) throw new Error(r.stderr);
  const types = new Map<string, string>();
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.digest === 'string' && typeof o.mediaType === 'string') types.set(o.digest, o.mediaType);
      Object.values(o).forEach(visit);
    }
  };
  const read = (digest: string) => readFileSync(join(dir, 'blobs/sha256', digest.slice(7)));
  visit(JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')));
  // Walk JSON blobs until no new descriptors appear.
  for (let changed = true; changed; ) {
    changed = false;
    for (const [d, t] of [...types]) {
      if (!t.endsWith('json')) continue;
      const before = types.size;
      try {
        visit(JSON.parse(read(d).toString('utf8')));
      } catch {
        // not JSON after all
      }
      if (types.size !== before) changed = true;
    }
  }
  return { dir, blobs: [...types].map(([digest, mediaType]) => ({ digest, mediaType, path: join(dir, 'blobs/sha256', digest.slice(7)) })) };
}

/** Every entry of a (small) bundle tar, by name. */
export async function readEntries(file: string): Promise<Map<string, Buffer>> {
  const entries = new Map<string, Buffer>();
  const ex = tar.extract();
  createReadStream(file).pipe(ex as unknown as NodeJS.WritableStream);
  for await (const e of ex) {
    const parts: Buffer[] = [];
    for await (const c of e as unknown as AsyncIterable<Buffer>) parts.push(c);
    entries.set(e.header.name, Buffer.concat(parts));
  }
  return entries;
}

/** Rewrites the outer tar of a bundle through a callback (no re-signing): for tampering tests. */
export async function rewriteTar(file: string, out: string, edit: (entries: Map<string, Buffer>) => void): Promise<void> {
  const entries = await readEntries(file);
  edit(entries);
  const pack = tar.pack();
  const ws = createWriteStream(out);
  const done = new Promise<void>((r) => ws.on('finish', () => r()));
  pack.pipe(ws as unknown as NodeJS.WritableStream);
  for (const [name, data] of [...entries].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (name.endsWith('/')) pack.entry({ name, type: 'directory', mode: 0o755, mtime: new Date(0) });
    else pack.entry({ name, mode: 0o644, mtime: new Date(0) }, data);
  }
  pack.finalize();
  await done;
}

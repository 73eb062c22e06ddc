/**
 * Rebuilds the bundle file from what a pull fetched. The writer's layout
 * is a function of the blobs alone (docs/bundle-format.md §1, §3:
 * assemble.ts): directories, module blobs by digest, every other blob by
 * digest, index.json (derived from the bundle index and the signature
 * manifest: envelope.ts topIndexFor), oci-layout, all with mtime =
 * the signed `created` time. So the same blobs give the same bytes as the
 * file that was pushed, which the round-trip test checks with sha256.
 */
import { Annotation, BlobStore, BundleFile, createdEpoch, hexOf, leadingEntries, OCI_LAYOUT_BYTES, topIndexFor, byteOrder, canonicalJsonBytes, type ImageIndex, type ReproEntry } from '../bundle/index.js';
import { KbundleError } from '../util/errors.js';
import type { BundleGraph } from './graph.js';
import { ExitCode } from '../util/exit-codes.js';

export interface PulledBlobs {
  /** digest → file holding exactly those bytes (checked as downloaded). */
  files: ReadonlyMap<string, string>;
}

/** Writes the bundle tar for `graph` to `outFile` (temp + rename inside BundleFile). */
export async function assemblePulled(graph: BundleGraph, pulled: PulledBlobs, outFile: string, scratch: string): Promise<{ size: number }> {
  const index = JSON.parse(graph.index.bytes.toString('utf8')) as ImageIndex;
  const annotations = index.annotations ?? {};
  const sde = createdEpoch(annotations[Annotation.created]);
  if (Number.isNaN(sde)) throw new KbundleError(`bundle index ${graph.index.digest}: created annotation "${annotations[Annotation.created]}" is not whole seconds`, ExitCode.BadLayout);
  const store = await BlobStore.create(scratch);
  try {
    for (const doc of [graph.index, ...graph.manifests, graph.signature]) store.putBytes(doc.bytes);
    for (const b of graph.blobs) {
      const f = pulled.files.get(b.digest);
      if (!f) throw new KbundleError(`internal: blob ${b.digest} was not fetched`, ExitCode.BadLayout);
      store.adopt(f, { digest: b.digest, size: b.size });
    }
    const leading = leadingEntries(graph.manifests.map((m) => m.bytes), store);
    const inLeading = new Set(leading.map((e) => e.path));
    const all = [graph.index, ...graph.manifests, graph.signature].map((d) => d.digest).concat(graph.blobs.map((b) => b.digest));
    const rest: ReproEntry[] = [...new Set(all)]
      .map((digest): ReproEntry => {
        const b = store.get(digest);
        const path = `blobs/sha256/${hexOf(digest)}`;
        return 'data' in b ? { type: 'file', path, data: b.data } : { type: 'file', path, file: b.file, size: b.size, identity: b.identity };
      })
      .filter((e) => !inLeading.has(e.path))
      .sort((a, b) => byteOrder(a.path, b.path));
    const top = topIndexFor({ digest: graph.index.digest, size: graph.index.size }, annotations, { digest: graph.signature.digest, size: graph.signature.size });
    rest.push({ type: 'file', path: 'index.json', data: canonicalJsonBytes(top) }, { type: 'file', path: 'oci-layout', data: OCI_LAYOUT_BYTES });
    const file = await BundleFile.create(outFile);
    try {
      await file.append(leading, sde);
      await file.append(rest, sde);
      return await file.commit();
    } catch (e) {
      await file.abort();
      throw e;
    }
  } finally {
    // The blob files belong to the caller's scratch directory; the store's own dir is empty.
    await store.dispose();
  }
}

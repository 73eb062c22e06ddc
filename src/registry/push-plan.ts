/**
 * Which parts of a bundle a push sends, given what the registry already
 * holds (HEAD answers). Pure. Blobs the registry has are never sent again,
 * so pushing a new version of a module sends only the blobs that changed
 * and a re-push sends none; manifests likewise, and the tag only when it
 * does not already name this bundle.
 */
import type { BundleGraph, GraphBlob, JsonDoc } from './graph.js';

export interface RegistryState {
  /** Blob digests the registry answered HEAD 200 for. */
  blobs: ReadonlySet<string>;
  /** Manifest digests the registry answered HEAD 200 for. */
  manifests: ReadonlySet<string>;
  /** What the tag resolves to now (its Docker-Content-Digest), or null. */
  tagDigest: string | null;
}

export interface ManifestPut {
  doc: JsonDoc;
  /** Tag or digest the manifest is PUT under. */
  reference: string;
}

export interface PushPlan {
  send: GraphBlob[];
  skip: GraphBlob[];
  /** In dependency order: what an index or a subject refers to goes first. */
  manifests: ManifestPut[];
  skippedManifests: JsonDoc[];
  bytes: { total: number; send: number; skip: number };
}

export function planPush(graph: BundleGraph, state: RegistryState, tag: string | null): PushPlan {
  const send = graph.blobs.filter((b) => !state.blobs.has(b.digest));
  const skip = graph.blobs.filter((b) => state.blobs.has(b.digest));
  const manifests: ManifestPut[] = [];
  const skippedManifests: JsonDoc[] = [];
  const byDigest = (doc: JsonDoc) => {
    if (state.manifests.has(doc.digest)) skippedManifests.push(doc);
    else manifests.push({ doc, reference: doc.digest });
  };
  graph.manifests.forEach(byDigest);
  if (tag) {
    // PUT by tag stores the index under its digest too.
    if (state.tagDigest === graph.index.digest) skippedManifests.push(graph.index);
    else manifests.push({ doc: graph.index, reference: tag });
  } else byDigest(graph.index);
  byDigest(graph.signature);
  const sum = (bs: GraphBlob[]) => bs.reduce((n, b) => n + b.size, 0);
  return { send, skip, manifests, skippedManifests, bytes: { total: sum(graph.blobs), send: sum(send), skip: sum(skip) } };
}

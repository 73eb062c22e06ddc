import { dirname, join, resolve } from 'node:path';
import { KbundleError } from '../../util/errors.js';
import { assembleBundle, type WriteResult } from './assemble.js';
import { BlobStore } from './blob-store.js';
import { canonicalJson } from '../model/canonical-json.js';
import { hexOf } from '../model/digest.js';
import type { ImageIndex, ImageManifest } from '../model/oci.js';
import { openBundle } from '../read/open.js';
import type { PublicKey, SecretKey } from '../../sign/minisign.js';
import { ExitCode } from '../../util/exit-codes.js';

export interface MergeOptions {
  /** Keys the shards must be signed with. */
  trustedKeys: PublicKey[];
  /** Key for the merged bundle. */
  signingKey: SecretKey;
}

/**
 * Combines shard bundles (the same package(s) built for disjoint or
 * overlapping target sets) into one. Each shard is fully verified first; the
 * union of their manifests then goes through the same assembleBundle as a
 * direct build, so the result is byte-identical to building all targets at
 * once. Shards must agree on identity/metadata and on every source.
 */
export async function mergeBundles(files: string[], outFile: string, opts: MergeOptions): Promise<WriteResult> {
  if (files.length === 0) throw new KbundleError('merge: no input bundles', ExitCode.BadSpec);
  const out = resolve(outFile);
  const store = await BlobStore.create(dirname(out));
  try {
    let annotations: Record<string, string> | null = null;
    let first = '';
    const manifests: Buffer[] = [];
    for (const [i, f] of files.entries()) {
      const b = await openBundle(f, { trustedKeys: opts.trustedKeys });
      const index = JSON.parse(b.jsonBlob(b.index.rootDigest).toString('utf8')) as ImageIndex;
      const ann = index.annotations ?? {};
      if (annotations === null) {
        annotations = ann;
        first = f;
      } else if (canonicalJson(ann) !== canonicalJson(annotations)) {
        throw new KbundleError(`merge: ${f} has different name/version/created/metadata than ${first}`, ExitCode.MergeConflict);
      }
      const wanted = new Map<string, number>();
      for (const d of index.manifests) {
        const bytes = b.jsonBlob(d.digest);
        manifests.push(bytes);
        const m = JSON.parse(bytes.toString('utf8')) as ImageManifest;
        for (const blob of [m.config, ...m.layers]) if (!store.has(blob.digest)) wanted.set(blob.digest, blob.size);
      }
      const dir = join(store.dir, `shard-${i}`);
      await b.copyBlobsTo(dir, [...wanted.keys()]);
      for (const [digest, size] of wanted) store.adopt(join(dir, hexOf(digest)), { digest, size });
      // Small JSON blobs must be in memory for assembleBundle to read manifests.
      for (const d of index.manifests) store.putBytes(b.jsonBlob(d.digest));
    }
    return await assembleBundle({ annotations: annotations!, manifests, store, key: opts.signingKey }, out);
  } finally {
    await store.dispose();
  }
}


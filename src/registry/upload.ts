/**
 * Blob uploads (distribution-spec "Pushing blobs"): POST opens a session and
 * answers 202 with its Location; then either one PUT with the whole blob and
 * `?digest=` (monolithic), or PATCHes of `--chunk-size` bytes with
 * `Content-Range: <first>-<last>` (inclusive, no unit, as the spec's
 * "Pushing a blob in chunks" gives it), each answered 202 with the next
 * Location and `Range: 0-<last>`, closed by a PUT with `?digest=` and no
 * body. The registry hashes what it received and refuses a wrong digest
 * (400 DIGEST_INVALID), so a blob arrives whole or not at all.
 */
import type { Readable } from 'node:stream';
import { KbundleError } from '../util/errors.js';
import type { RegistryClient } from './client.js';
import { ExitCode } from '../util/exit-codes.js';
import { header } from './http.js';

export interface BlobSource {
  digest: string;
  size: number;
  /** A fresh stream of the blob's bytes (verified against the digest as it is read). */
  open: () => Readable;
}

function withDigest(url: URL, digest: string): URL {
  const u = new URL(url.href);
  u.searchParams.set('digest', digest);
  return u;
}

async function startSession(client: RegistryClient, what: string): Promise<URL> {
  const url = client.url('blobs/uploads/');
  const res = await client.json({ method: 'POST', url }, [202], `${what}: POST ${url.pathname}`);
  return client.location(res, what);
}

function checkCommitted(client: RegistryClient, res: { headers: Record<string, unknown> }, blob: BlobSource, what: string): void {
  const got = header(res.headers as never, 'docker-content-digest');
  if (got && got !== blob.digest) throw new KbundleError(`${what}: ${client.ref.registry} stored it as ${got}, not ${blob.digest}`, ExitCode.RegistryDigestMismatch);
}

export async function uploadMonolithic(client: RegistryClient, blob: BlobSource): Promise<void> {
  const what = `upload of blob ${blob.digest}`;
  const loc = await startSession(client, what);
  const res = await client.put(withDigest(loc, blob.digest), { length: blob.size, open: blob.open }, 'application/octet-stream', [201], what);
  checkCommitted(client, res, blob, what);
}

export async function uploadChunked(client: RegistryClient, blob: BlobSource, chunkSize: number): Promise<{ chunks: number }> {
  const what = `upload of blob ${blob.digest}`;
  let loc = await startSession(client, what);
  let sent = 0;
  let chunks = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (!pendingBytes) return;
    const body = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    const last = sent + body.length - 1;
    const res = await client.json(
      { method: 'PATCH', url: loc, headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${sent}-${last}` }, body },
      [202],
      `${what}: PATCH bytes ${sent}-${last}`,
    );
    const range = header(res.headers, 'range');
    // The registry says how much it holds; anything but 0-<last> means it lost or reordered bytes.
    if (range !== undefined && range !== `0-${last}` && range !== `bytes=0-${last}`) {
      throw new KbundleError(`${what}: after bytes ${sent}-${last} ${client.ref.registry} reports Range ${range}`, ExitCode.RegistryProtocol);
    }
    loc = client.location(res, what);
    sent = last + 1;
    chunks++;
  };
  for await (const c of blob.open() as AsyncIterable<Buffer>) {
    for (let off = 0; off < c.length; ) {
      const take = Math.min(chunkSize - pendingBytes, c.length - off);
      pending.push(c.subarray(off, off + take));
      pendingBytes += take;
      off += take;
      if (pendingBytes === chunkSize) await flush();
    }
  }
  await flush();
  if (sent !== blob.size) throw new KbundleError(`${what}: read ${sent} bytes, the bundle declares ${blob.size}`, ExitCode.RegistryDigestMismatch);
  const res = await client.put(withDigest(loc, blob.digest), Buffer.alloc(0), 'application/octet-stream', [201], `${what}: closing PUT`);
  checkCommitted(client, res, blob, what);
  return { chunks };
}

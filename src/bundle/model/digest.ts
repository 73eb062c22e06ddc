import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { KbundleError } from '../../util/errors.js';
import { identityOfStats, sameIdentity, type FileIdentity } from '../../util/file-identity.js';
import type { Descriptor } from './oci.js';
import { ExitCode } from '../../util/exit-codes.js';

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export interface Digested {
  /** `sha256:<64 lowercase hex>` */
  digest: string;
  size: number;
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function digestOf(data: Uint8Array | string): Digested {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return { digest: 'sha256:' + sha256Hex(buf), size: buf.byteLength };
}

/** Consumes a stream; memory stays at one chunk whatever the stream's length. */
export async function digestStream(stream: Readable | NodeJS.ReadableStream): Promise<Digested> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: 'sha256:' + hash.digest('hex'), size };
}

export async function digestFile(path: string): Promise<Digested> {
  const { digest, size } = await hashFile(path);
  return { digest, size };
}

/**
 * Digest of a file plus the identity it had while being hashed, so a later
 * copy can check it is still the same file without reading it again. One
 * reused buffer: a fresh one per chunk (as a read stream allocates) made
 * the garbage collector a large share of packing time.
 */
export async function hashFile(path: string): Promise<Digested & { identity: FileIdentity }> {
  const fh = await open(path, 'r');
  try {
    const ident = async (): Promise<FileIdentity> => identityOfStats(await fh.stat({ bigint: true }));
    const before = await ident();
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafeSlow(1 << 20);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
    if (BigInt(size) !== before.size || !sameIdentity(before, await ident())) {
      throw new KbundleError(`${path} changed while being hashed`, ExitCode.DigestMismatch);
    }
    return { digest: 'sha256:' + hash.digest('hex'), size, identity: before };
  } finally {
    await fh.close();
  }
}

/** The hex part of an OCI digest, after checking its form (it becomes a file name). */
export function hexOf(digest: string): string {
  if (!DIGEST_RE.test(digest)) throw new KbundleError(`not a sha256 digest: ${JSON.stringify(digest)}`, ExitCode.BadLayout);
  return digest.slice(7);
}

/**
 * OCI `sha256:<hex>` → SRI `sha256-<base64>`; the two name the same bytes.
 * Written out rather than through ssri.fromHex, so packing does not load
 * ssri (~35 ms of start-up); the installer checks these strings with ssri,
 * and the tests check ssri accepts them.
 */
export function ociToIntegrity(digest: string): string {
  return `sha256-${Buffer.from(hexOf(digest), 'hex').toString('base64')}`;
}

export function descriptor(mediaType: string, bytes: Uint8Array | string, annotations?: Record<string, string>): Descriptor {
  const d = digestOf(bytes);
  return withAnnotations({ mediaType, digest: d.digest, size: d.size }, annotations);
}

export async function fileDescriptor(mediaType: string, file: string, annotations?: Record<string, string>): Promise<Descriptor> {
  const d = await digestFile(file);
  return withAnnotations({ mediaType, digest: d.digest, size: d.size }, annotations);
}

function withAnnotations(d: Descriptor, annotations?: Record<string, string>): Descriptor {
  return annotations && Object.keys(annotations).length > 0 ? { ...d, annotations } : d;
}

/**
 * Checks that bytes fed to it are exactly `expected`: size as they arrive
 * (a stream that runs long fails early instead of being hashed to the end),
 * digest at the end. Errors name `what` and exit 31.
 */
export class Verifier {
  private readonly hash = createHash('sha256');
  private seen = 0;
  constructor(
    private readonly expected: Digested,
    private readonly what: string,
  ) {}

  /** Throws once more than the expected size has been fed. */
  update(chunk: Uint8Array): void {
    this.seen += chunk.length;
    if (this.seen > this.expected.size) throw new KbundleError(`${this.what}: more than the declared ${this.expected.size} bytes`, ExitCode.DigestMismatch);
    this.hash.update(chunk);
  }

  /** Throws unless exactly the expected bytes were fed. */
  finish(): void {
    checkDigested({ digest: 'sha256:' + this.hash.digest('hex'), size: this.seen }, this.expected, this.what);
  }
}

/** Throws (exit 31) unless `got` is `expected`, naming `what`. */
export function checkDigested(got: Digested, expected: Digested, what: string): void {
  if (got.size !== expected.size) throw new KbundleError(`${what}: ${got.size} bytes, descriptor declares ${expected.size}`, ExitCode.DigestMismatch);
  if (got.digest !== expected.digest) throw new KbundleError(`${what}: content digest ${got.digest} does not match ${expected.digest}`, ExitCode.DigestMismatch);
}

/** Pass-through that fails the stream unless exactly the expected bytes went through (Verifier). */
export class VerifyingStream extends Transform {
  private readonly verifier: Verifier;
  constructor(expected: Digested, what: string) {
    super();
    this.verifier = new Verifier(expected, what);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.verifier.update(chunk);
    } catch (e) {
      done(e as Error);
      return;
    }
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    try {
      this.verifier.finish();
    } catch (e) {
      done(e as Error);
      return;
    }
    done();
  }
}

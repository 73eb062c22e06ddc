import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, pipeline as pipelineCb } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { KbundleError } from '../util/errors.js';
import { VerifyingStream, hexOf } from './digest.js';
import { BundleExit } from './exit-codes.js';
import { checkEntryName } from './tar-paths.js';
const BLOB_RE = /^blobs\/sha256\/([a-f0-9]{64})$/;
const TOP_FILES = new Set(['index.json', 'oci-layout']);
const DIRS = new Set(['blobs', 'blobs/sha256']);
/**
 * One pass over the archive with bounded memory: every entry must be one the
 * layout defines (directory `blobs/`, `blobs/sha256/`, files `oci-layout`,
 * `index.json`, `blobs/sha256/<hex>`), appear once, and every blob must hash
 * to its own name. Large blobs are hashed and dropped; only candidate JSON is
 * kept. Nothing is written to disk.
 */
export async function scanArchive(file, limits = {}) {
    const maxJson = limits.maxJsonSize ?? 1 << 20;
    const maxRetained = limits.maxRetained ?? 64 << 20;
    const fail = (msg, code = BundleExit.UnsafeArchive) => new KbundleError(`${file}: ${msg}`, code);
    const seen = new Set();
    const blobs = new Map();
    const small = new Map();
    let retained = 0;
    let ociLayout = null;
    let indexJson = null;
    const extractor = tar.extract();
    const done = pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), extractor).catch((e) => {
        throw e instanceof KbundleError ? e : fail(classify(e));
    });
    try {
        for await (const entry of extractor) {
            const h = entry.header;
            const named = checkEntryName(h.name);
            if ('reason' in named)
                throw fail(`entry ${JSON.stringify(h.name)} ${named.reason}`);
            const path = named.path;
            if (seen.has(path))
                throw fail(`duplicate entry ${path}`);
            seen.add(path);
            if (DIRS.has(path)) {
                if (h.type !== 'directory')
                    throw fail(`entry ${path} must be a directory, is a ${h.type}`);
                entry.resume();
                continue;
            }
            const blob = BLOB_RE.exec(path);
            if (!blob && !TOP_FILES.has(path))
                throw fail(`entry ${path} is not part of an OCI image layout`);
            if (h.type !== 'file')
                throw fail(`entry ${path} must be a regular file, is a ${h.type}`);
            if (!blob) {
                if (h.size > maxJson)
                    throw fail(`${path} is ${h.size} bytes, over the ${maxJson}-byte limit`, BundleExit.LimitExceeded);
                const buf = await collect(entry);
                if (path === 'index.json')
                    indexJson = buf;
                else
                    ociLayout = buf;
                continue;
            }
            const digest = `sha256:${blob[1]}`;
            const hash = createHash('sha256');
            let keep = h.size <= maxJson ? [] : null;
            let first = true;
            for await (const chunk of entry) {
                hash.update(chunk);
                if (first && keep && chunk.length > 0) {
                    // JSON starts with `{`, a minisign file with `u`; modules and
                    // sources never do, so they are not held in memory.
                    if (chunk[0] !== 0x7b && chunk[0] !== 0x75)
                        keep = null;
                    first = false;
                }
                keep?.push(chunk);
            }
            const got = 'sha256:' + hash.digest('hex');
            if (got !== digest)
                throw fail(`blob ${digest} is corrupt: its content hashes to ${got}`, BundleExit.DigestMismatch);
            blobs.set(digest, h.size);
            if (keep) {
                retained += h.size;
                if (retained > maxRetained)
                    throw fail(`more than ${maxRetained} bytes of metadata blobs`, BundleExit.LimitExceeded);
                small.set(digest, Buffer.concat(keep));
            }
        }
    }
    catch (e) {
        extractor.destroy();
        await done.catch(() => undefined);
        throw e instanceof KbundleError ? e : fail(classify(e));
    }
    await done;
    if (!ociLayout)
        throw fail('no oci-layout file: not an OCI image layout', BundleExit.BadLayout);
    if (!indexJson)
        throw fail('no index.json: not an OCI image layout', BundleExit.BadLayout);
    return { file, blobs, small, ociLayout, indexJson };
}
function classify(e) {
    if (/unexpected end/i.test(e.message))
        return 'truncated archive (unexpected end of data)';
    return `not a valid tar archive (${e.message})`;
}
async function collect(stream) {
    const parts = [];
    for await (const c of stream)
        parts.push(c);
    return Buffer.concat(parts);
}
/**
 * Streams one blob out of the archive, re-verified against `expected` as it
 * goes (the file may have changed since it was scanned). The consumer sees
 * an error instead of end-of-stream if size or digest differ.
 */
export function readBlobFromArchive(file, expected) {
    const wanted = `blobs/sha256/${hexOf(expected.digest)}`;
    const source = Readable.from((async function* () {
        const extractor = tar.extract();
        const input = createReadStream(file, { highWaterMark: 1 << 20 });
        const feeding = pipeline(input, extractor).catch(() => undefined);
        let found = false;
        try {
            for await (const entry of extractor) {
                if (entry.header.name === wanted) {
                    found = true;
                    for await (const chunk of entry)
                        yield chunk;
                    break;
                }
                entry.resume();
            }
        }
        finally {
            extractor.destroy();
            input.destroy();
            await feeding;
        }
        if (!found)
            throw new KbundleError(`${file}: blob ${expected.digest} is not in the archive`, BundleExit.BadLayout);
    })(), { objectMode: false });
    return pipelineCb(source, new VerifyingStream(expected, `${file}: blob ${expected.digest}`), () => undefined);
}
/** Copies the wanted blobs to `dir/<hex>` in one pass, each verified and renamed into place only when complete. */
export async function copyBlobsFromArchive(file, wanted, dir) {
    await mkdir(dir, { recursive: true });
    const byName = new Map();
    for (const [digest, size] of wanted)
        byName.set(`blobs/sha256/${hexOf(digest)}`, { digest, size });
    const extractor = tar.extract();
    const feeding = pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), extractor);
    const got = new Set();
    for await (const entry of extractor) {
        const exp = byName.get(entry.header.name);
        if (!exp || got.has(exp.digest)) {
            entry.resume();
            continue;
        }
        const final = join(dir, hexOf(exp.digest));
        const part = final + '.part';
        try {
            await pipeline(entry, new VerifyingStream(exp, `${file}: blob ${exp.digest}`), createWriteStream(part));
        }
        catch (e) {
            await rm(part, { force: true });
            throw e;
        }
        await rename(part, final);
        got.add(exp.digest);
    }
    await feeding;
    for (const d of wanted.keys())
        if (!got.has(d))
            throw new KbundleError(`${file}: blob ${d} is not in the archive`, BundleExit.BadLayout);
}

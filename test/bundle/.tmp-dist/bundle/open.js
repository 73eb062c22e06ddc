import { resolve } from 'node:path';
import { pipeline } from 'node:stream';
import { KbundleError } from '../util/errors.js';
import { VerifyingStream } from './digest.js';
import { BundleExit } from './exit-codes.js';
import { copyBlobsFromArchive, readBlobFromArchive, scanArchive } from './reader.js';
import { safeExtract } from './safe-extract.js';
import { verifyScanned } from './verify.js';
import { decompressStream } from './zstd.js';
export async function openBundle(file, opts) {
    const path = resolve(file);
    const scan = await scanArchive(path, opts);
    const index = verifyScanned(scan, opts);
    const size = (digest) => {
        const s = scan.blobs.get(digest);
        if (s === undefined)
            throw new KbundleError(`${path}: no blob ${digest} in this bundle`, BundleExit.BadLayout);
        return s;
    };
    const pkg = (name) => {
        const p = index.packages.find((x) => x.name === name);
        if (!p)
            throw new KbundleError(`${path}: no package ${name} (has: ${index.packages.map((x) => x.name).join(', ')})`, BundleExit.BadLayout);
        return p;
    };
    const readBlob = (digest) => readBlobFromArchive(path, { digest, size: size(digest) });
    return {
        index,
        readBlob,
        copyBlobsTo: (dir, digests) => copyBlobsFromArchive(path, new Map((digests ?? [...scan.blobs.keys()]).map((d) => [d, size(d)])), dir),
        jsonBlob: (digest) => {
            const b = scan.small.get(digest);
            if (!b)
                throw new KbundleError(`${path}: blob ${digest} is not a metadata blob`, BundleExit.BadLayout);
            return b;
        },
        package: pkg,
        target: (name, kernelRelease, arch) => pkg(name).targets.find((t) => t.kernelRelease === kernelRelease && t.arch === arch),
        extractSource: async (name, dest, limits) => {
            const p = pkg(name);
            const declared = p.config.source;
            const src = readBlob(p.source.digest);
            const what = `source of ${p.name} ${p.version}`;
            const plain = pipeline(src, decompressStream({ maxOutput: declared.size, what }), new VerifyingStream(declared, `${what} (uncompressed)`), () => undefined);
            return safeExtract(plain, dest, { what, ...limits });
        },
    };
}
/** Shorthand for `ls`-style callers that need nothing but the verified summary. */
export async function verifyBundle(file, opts) {
    return (await openBundle(file, opts)).index;
}

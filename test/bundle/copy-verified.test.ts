// copyVerified keeps a copy of a bundle the caller verified; the file is
// the user's, so it may change between openBundle and the copy.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { canonicalJsonBytes } from '../../src/bundle/model/canonical-json.js';
import { copyVerified } from '../../src/bundle/read/copy-verified.js';
import { openBundle } from '../../src/bundle/read/open.js';
import { writeBundle } from '../../src/bundle/write/writer.js';
import { KbundleError } from '../../src/util/errors.js';
import { rewriteTar } from '../helpers/bundles.js';
import { makeSourceTree, realModules, rewriteWithPython, spec, target, testKeys, tmp } from './fixtures.js';

const K = '6.1.0-56-amd64';
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

async function failure(p: Promise<unknown>): Promise<KbundleError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof KbundleError)) throw new Error(`expected a KbundleError, got ${String(e)}`);
  return e;
}

describe('copyVerified', () => {
  let dir: string;
  let good: string;
  let other: string;
  const { pk } = testKeys();

  beforeAll(async () => {
    dir = tmp();
    const src = makeSourceTree(dir);
    good = join(dir, 'good.kbundle');
    other = join(dir, 'other.kbundle');
    await writeBundle(spec(src, [target(K, 'x86_64', realModules().slice(0, 2))]), good);
    await writeBundle(spec(src, [target(K, 'x86_64', realModules().slice(0, 2))], { version: '2.0' }), other);
  });

  /** A fresh copy of `good` to open, and an empty directory for the stored copy. */
  function setUp(name: string): { file: string; store: string; dest: string } {
    const file = join(dir, `${name}.kbundle`);
    copyFileSync(good, file);
    const store = join(tmp(), 'store');
    return { file, store, dest: join(store, 'kept.kbundle') };
  }

  /** Refused with code and message; neither the copy nor a temp file is left. */
  async function refused(p: Promise<unknown>, store: string, code: number, message: string | RegExp): Promise<void> {
    const err = await failure(p);
    expect(err.exitCode).toBe(code);
    if (typeof message === 'string') expect(err.message).toBe(message);
    else expect(err.message).toMatch(message);
    expect(existsSync(store) ? readdirSync(store) : []).toEqual([]);
  }

  test('an unchanged file: the copy is byte-identical, verifies to the same root, no temp file left', async () => {
    const { file, store, dest } = setUp('same');
    const b = await openBundle(file, { trustedKeys: [pk] });
    expect(await copyVerified(b, dest)).toEqual({ size: readFileSync(file).length });
    expect(sha(dest)).toBe(sha(file));
    expect((await openBundle(dest, { trustedKeys: [pk] })).index.rootDigest).toBe(b.index.rootDigest);
    expect(readdirSync(store)).toEqual(['kept.kbundle']);
  });

  test('an archive the header walk does not follow (GNU tar) is copied the same way', async () => {
    const { file, dest } = setUp('gnu');
    rewriteWithPython(good, file, 'GNU_FORMAT');
    const b = await openBundle(file, { trustedKeys: [pk] });
    await copyVerified(b, dest);
    expect(sha(dest)).toBe(sha(file));
  });

  test('a byte of a blob flipped after open → 31, nothing kept', async () => {
    const { file, store, dest } = setUp('flipped');
    const b = await openBundle(file, { trustedKeys: [pk] });
    const m = b.index.packages[0]!.targets[0]!.modules[0]!;
    const buf = readFileSync(file);
    const at = buf.indexOf(readFileSync(realModules().find((f) => f.endsWith(m.file))!));
    expect(at).toBeGreaterThan(0);
    buf[at + 100] ^= 1;
    writeFileSync(file, buf);
    await refused(copyVerified(b, dest), store, 31, new RegExp(`^${file}: blob ${m.digest} is corrupt: its content hashes to sha256:[0-9a-f]{64}$`));
  });

  test('replaced after open by another validly signed bundle → 31, nothing kept', async () => {
    const { file, store, dest } = setUp('replaced');
    const b = await openBundle(file, { trustedKeys: [pk] });
    copyFileSync(other, join(dir, 'incoming'));
    renameSync(join(dir, 'incoming'), file);
    await refused(copyVerified(b, dest), store, 31, new RegExp(`^${file} changed after it was verified: blob sha256:[0-9a-f]{64} is no longer in it; not copied$`));
  });

  test('index.json rewritten after open (same blobs) → 31, nothing kept', async () => {
    const { file, store, dest } = setUp('reindexed');
    const b = await openBundle(file, { trustedKeys: [pk] });
    await rewriteTar(good, file, (e) => {
      const top = JSON.parse(e.get('index.json')!.toString());
      top.manifests[0].annotations['org.opencontainers.image.ref.name'] = 'evil1:9.9';
      e.set('index.json', canonicalJsonBytes(top));
    });
    await refused(copyVerified(b, dest), store, 31, `${file} changed after it was verified: index.json differs from the verified one; not copied`);
  });

  test('truncated or removed after open → 32, nothing kept', async () => {
    const cut = setUp('cut');
    const b = await openBundle(cut.file, { trustedKeys: [pk] });
    truncateSync(cut.file, Math.floor(readFileSync(good).length / 2));
    await refused(copyVerified(b, cut.dest), cut.store, 32, `${cut.file}: truncated archive (unexpected end of data)`);

    const gone = setUp('gone');
    const b2 = await openBundle(gone.file, { trustedKeys: [pk] });
    rmSync(gone.file);
    await refused(copyVerified(b2, gone.dest), gone.store, 32, new RegExp(`^${gone.file}: cannot be read as a bundle \\(ENOENT`));
  });
});

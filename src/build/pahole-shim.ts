/**
 * kbuild runs `pahole -J -j` to add BTF to modules (kernels >= 6.x, pahole
 * >= 1.22). Before pahole 1.27's reproducible_build feature, -j makes the
 * encoded BTF depend on thread timing: two builds of the same source differ
 * (measured with Debian 12's pahole 1.24 on 6.12 headers). kbundle puts a
 * `pahole` first on make's PATH that drops -j and runs the real one, so module
 * bytes depend only on their inputs — bundles need that to be reproducible.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurable } from '../util/atomic.js';

const SCRIPT = `#!/bin/sh
# Written by kbundle: run pahole without -j (see src/build/pahole-shim.ts).
here=$(cd "$(dirname "$0")" && pwd)
PATH=$(printf '%s' "$PATH" | tr ':' '\\n' | grep -vxF "$here" | paste -sd: -)
export PATH
n=$#
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  case $a in
    -j|-j[0-9]*|--jobs|--jobs=*) ;;
    *) set -- "$@" "$a" ;;
  esac
done
exec pahole "$@"
`;

/** Directory holding the shim (created once, in the cache dir: it is not part of any module's DKMS state); prepend it to PATH for make. */
export async function paholeShimDir(cacheDir: string): Promise<string> {
  const dir = join(cacheDir, 'tools');
  const file = join(dir, 'pahole');
  if (!existsSync(file)) {
    await writeFileDurable(file, SCRIPT, { mode: 0o755 });
  }
  return dir;
}

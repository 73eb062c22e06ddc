/** Debug-info stripping before signing, as DKMS does (`strip -g`, unless STRIP[n]="no"). */
import { open } from 'node:fs/promises';
import { loadExeca } from '../util/execa.js';
import { KbundleError } from '../util/errors.js';
import { MODULE_SIG_MAGIC } from '../sign/appended-signature.js';
import { elfMachineOfFile } from '../arch/elf-machine.js';
import { stripToolFor } from '../arch/toolchain.js';

async function endsWithSignature(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size < MODULE_SIG_MAGIC.length) return false;
    const tail = Buffer.alloc(MODULE_SIG_MAGIC.length);
    await fh.read(tail, 0, tail.length, size - tail.length);
    return tail.equals(MODULE_SIG_MAGIC);
  } finally {
    await fh.close();
  }
}

/**
 * Runs `strip -g` on a module in place. A signed module is refused: strip
 * would drop the appended signature (it is not part of any section) and the
 * kernel's admin guide says signed modules must not be stripped.
 */
export async function stripDebug(koPath: string): Promise<void> {
  if (await endsWithSignature(koPath)) throw new KbundleError(`${koPath} is signed; strip before signing`);
  // A cross-built module needs its arch's strip (src/arch/toolchain.ts).
  const m = await elfMachineOfFile(koPath);
  const tool = m === null ? 'strip' : stripToolFor(m);
  const r = await (await loadExeca())(tool, ['-g', koPath], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new KbundleError(`${tool} -g failed on ${koPath}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
}

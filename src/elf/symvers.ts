/**
 * Module.symvers (modpost write_dump(); docs/formats/kabi.md): one exported
 * symbol per line, tab-separated.
 *   5.5+:   crc  symbol  module  export_type  namespace
 *   5.4:    crc  symbol  namespace  module  export_type   (namespace column only when set)
 *   <5.4:   crc  symbol  module  export_type
 */
import { KbundleError } from '../util/errors.js';
import { readFileOrFail } from '../util/fs.js';
import { decompress } from '../kmod/decompress.js';

export type ExportType = 'EXPORT_SYMBOL' | 'EXPORT_SYMBOL_GPL' | (string & {});

export interface SymversEntry {
  crc: number;
  /** `vmlinux` for built-in symbols, else the module path without `.ko`. */
  module: string;
  exportType: ExportType;
  /** '' when the symbol has no namespace. */
  namespace: string;
}

const isExport = (s: string | undefined) => s !== undefined && s.startsWith('EXPORT_');

/**
 * Parses Module.symvers text. The export type column is used to tell the 5.4
 * layout from the later one, because both have five columns. A symbol listed
 * twice keeps its last entry (modpost itself refuses duplicates).
 */
export function parseSymvers(text: string, what = 'Module.symvers'): Map<string, SymversEntry> {
  const out = new Map<string, SymversEntry>();
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const f = line.replace(/\r$/, '').split('\t');
    const bad = (why: string) => new KbundleError(`${what}:${i + 1}: ${why}: ${JSON.stringify(line.slice(0, 120))}`);
    if (f.length < 4) throw bad('expected at least 4 tab-separated fields');
    const [crcText, symbol] = f as [string, string];
    if (!/^0x[0-9a-fA-F]{1,8}$/.test(crcText)) throw bad('bad CRC');
    let module: string, exportType: string, namespace: string;
    if (isExport(f[3])) [module, exportType, namespace] = [f[2]!, f[3]!, f[4] ?? ''];
    else if (isExport(f[4])) [namespace, module, exportType] = [f[2]!, f[3]!, f[4]!];
    else throw bad('no EXPORT_* column');
    out.set(symbol, { crc: parseInt(crcText.slice(2), 16), module, exportType, namespace });
  });
  return out;
}

/** Reads Module.symvers or a compressed symvers file (Fedora's symvers-<k>.xz, SUSE's .gz). */
export async function readSymversFile(path: string): Promise<Map<string, SymversEntry>> {
  const raw = await readFileOrFail(path);
  return parseSymvers((await decompress(raw, path)).toString('utf8'), path);
}

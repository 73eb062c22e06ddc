/**
 * The build matrix of a manifest and its shards, pure. Entries are sorted
 * the same way on every machine so that `--shard I/N` on N CI jobs covers
 * the matrix exactly once, and the merged bundle equals a single build.
 */
export interface MatrixEntry {
  /** Index into the manifest's sources. */
  source: number;
  kernel: string;
  arch: string;
}

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export function parseShard(text: string): Shard | string {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m) return `--shard wants I/N (e.g. 1/4), got "${text}"`;
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) return `--shard ${text}: I must be between 1 and N`;
  return { index, count };
}

export function buildMatrix(sources: number, kernels: string[], arches: string[]): MatrixEntry[] {
  const out: MatrixEntry[] = [];
  for (let source = 0; source < sources; source++) {
    for (const kernel of [...kernels].sort()) for (const arch of [...arches].sort()) out.push({ source, kernel, arch });
  }
  return out;
}

/** Round-robin, so each shard gets a mix of kernels rather than one slow series. */
export function shardOf<T>(entries: T[], shard: Shard | null): T[] {
  if (!shard) return entries;
  return entries.filter((_, i) => i % shard.count === shard.index - 1);
}

import { fstatSync, statSync, type BigIntStats } from 'node:fs';

/**
 * What changes when a file's content is replaced or rewritten in place:
 * a blob hashed once when it is stored is checked against this when it is
 * copied into the bundle, instead of being hashed a second time (which cost
 * a full extra read of every module; docs/performance.md).
 */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export function identityOfStats(st: BigIntStats): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

export function identityOfPath(file: string): FileIdentity {
  return identityOfStats(statSync(file, { bigint: true }));
}

export function identityOfFd(fd: number): FileIdentity {
  return identityOfStats(fstatSync(fd, { bigint: true }));
}

export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

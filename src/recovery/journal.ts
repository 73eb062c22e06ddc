/**
 * The journal: one durable file per DKMS tree listing the mutating steps in
 * progress, outermost first. A command records an op before its first
 * visible change and drops it after its last; nested work (the uninstall of
 * the old version inside an upgrade, the core install inside a bundle
 * install) pushes its own op on top. Whoever next holds the tree lock —
 * `status`, `bundle recover`, or any mutating command — finishes the ops
 * innermost first through the same functions a clean run uses (recover.ts).
 *
 * Every change is a durable rewrite (atomic.ts), so after a crash the file
 * names exactly the ops whose effects may be partial.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readJsonRecord, writeJsonRecord } from '../tree/records.js';
import { removeDurable } from '../util/atomic.js';
import type { JournalOp, OpInput } from './ops.js';

export interface JournalFile {
  format: 'kbundle-journal-v2';
  ops: JournalOp[];
}

export const journalPath = (dkmsTree: string) => join(dkmsTree, '.kbundle-journal.json');

/** Ops of a tree in order (outermost first); [] when nothing is pending. Older single-op journals are read as one bundle op. */
export async function readOps(dkmsTree: string): Promise<JournalOp[]> {
  const raw = await readJsonRecord<JournalFile | (Record<string, unknown> & { format: string })>(journalPath(dkmsTree));
  if (!raw) return [];
  if (raw.format === 'kbundle-journal-v2') return (raw as JournalFile).ops;
  if (raw.format === 'kbundle-journal-v1') return [{ ...(raw as object), kind: 'bundle-install', id: 'v1' } as unknown as JournalOp];
  throw new Error(`${journalPath(dkmsTree)}: unknown journal format ${String(raw.format)}`);
}

/**
 * This process's view of each tree's journal. Concurrent builds in one
 * process push and drop ops at the same time, so every change goes through
 * one promise chain per tree.
 */
const trees = new Map<string, { ops: JournalOp[] | null; chain: Promise<void> }>();

function entry(dkmsTree: string) {
  let e = trees.get(dkmsTree);
  if (!e) trees.set(dkmsTree, (e = { ops: null, chain: Promise.resolve() }));
  return e;
}

function change(dkmsTree: string, f: (ops: JournalOp[]) => void): Promise<void> {
  const e = entry(dkmsTree);
  const next = e.chain.then(async () => {
    e.ops ??= await readOps(dkmsTree);
    f(e.ops);
    if (e.ops.length) await writeJsonRecord(journalPath(dkmsTree), { format: 'kbundle-journal-v2', ops: e.ops } satisfies JournalFile);
    else await removeDurable(journalPath(dkmsTree));
  });
  e.chain = next.catch(() => undefined);
  return next;
}

/** Records an op (durably) and returns it; call before its first visible change. */
export async function beginOp<T extends OpInput>(dkmsTree: string, op: T): Promise<T & { id: string }> {
  const full = { ...op, id: op.id ?? `${process.pid}-${randomBytes(4).toString('hex')}` } as T & { id: string };
  await change(dkmsTree, (ops) => {
    if (!ops.some((o) => o.id === full.id)) ops.push(full as unknown as JournalOp);
  });
  return full;
}

/** Rewrites a recorded op (a decision made mid-way that recovery must repeat exactly). */
export function updateOp(dkmsTree: string, op: JournalOp): Promise<void> {
  return change(dkmsTree, (ops) => {
    const i = ops.findIndex((o) => o.id === op.id);
    if (i >= 0) ops[i] = op;
  });
}

/** Drops an op once its last change is done (the file goes when no op is left). */
export function endOp(dkmsTree: string, id: string): Promise<void> {
  return change(dkmsTree, (ops) => {
    const i = ops.findIndex((o) => o.id === id);
    if (i >= 0) ops.splice(i, 1);
  });
}

/** Forget the cached view (another process may have changed the file while we did not hold the lock). */
export function forgetJournal(dkmsTree: string): void {
  const e = trees.get(dkmsTree);
  if (e) e.ops = null;
}

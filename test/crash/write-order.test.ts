// Power loss is not kill -9: the page cache goes too, and the file system may
// persist a rename before the data it names. So the order of syscalls must
// make every published name durable: data fsynced before the rename that
// publishes it (R1), the directory fsynced before anything depends on the
// new name (R2). Checked from an strace -y log of real installs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { describe, expect, test } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';
import { BIN, REPO } from '../helpers/scratch.js';
import { buildBundle, trust } from '../deploy/helpers.js';
import { coreState, depmod, layout, treesAt, type Trees } from './scenario.js';

const [K61, K612] = twoKernels();

const TRACED = [
  'openat',
  'write',
  'writev',
  'pwrite64',
  'pwritev',
  'sendfile',
  'copy_file_range',
  'ioctl',
  'fsync',
  'fdatasync',
  'rename',
  'renameat',
  'renameat2',
  'symlink',
  'symlinkat',
  'link',
  'linkat',
  'unlink',
  'unlinkat',
  'rmdir',
  'mkdir',
  'mkdirat',
  'close',
  'syncfs',
  'sync',
];

interface Call {
  /** Log line index where the call completed (its result is known from here on). */
  at: number;
  pid: number;
  name: string;
  args: string;
  ok: boolean;
}

/** One strace -f -y log into completed calls, in completion order. */
export function readCalls(text: string): Call[] {
  const calls: Call[] = [];
  const pending = new Map<string, { name: string; args: string }>();
  text.split('\n').forEach((raw, at) => {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) return;
    const pid = Number(m[1]);
    const rest = m[2]!;
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
    let name: string;
    let whole: string;
    if (resumed) {
      const p = pending.get(`${pid} ${resumed[1]}`);
      if (!p) return;
      pending.delete(`${pid} ${resumed[1]}`);
      name = p.name;
      whole = p.args + resumed[2];
    } else {
      const c = /^(\w+)\((.*)$/.exec(rest);
      if (!c) return;
      name = c[1]!;
      if (rest.endsWith('<unfinished ...>')) {
        pending.set(`${pid} ${name}`, { name, args: c[2]!.replace(/ <unfinished \.\.\.>$/, '') });
        return;
      }
      whole = c[2]!;
    }
    // The result is at the end: "= 3", "= 20</path>", "= -1 ENOENT (...)", "= ?" when killed.
    const ret = /\)\s+= (-?\d+)(?:<[^>]*>)?(?: [A-Z]\w* \(.*\))?$/.exec(whole);
    calls.push({ at, pid, name, args: whole, ok: Boolean(ret && Number(ret[1]) >= 0) });
  });
  return calls;
}

/** Decoded "N</path>" fds of a call's argument list, in order. */
const fds = (args: string) => [...args.matchAll(/(?:^|[(, ])(?:\d+|AT_FDCWD)<([^>]*)>/g)].map((m) => m[1]!);
/** Quoted string arguments, unescaped enough for paths. */
const strs = (args: string) => [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\"/g, '"'));

/** A name relative to a dirfd (renameat & co.) made absolute with the dirfd's -y path. */
function at(dirfd: string | undefined, p: string): string {
  return p.startsWith('/') || !dirfd ? p : posix.join(dirfd, p);
}

interface NameChange {
  call: Call;
  from?: string;
  to: string;
}

/** rename/unlink/rmdir/symlink/link calls with absolute paths. */
function nameChange(c: Call): NameChange | null {
  if (!c.ok) return null;
  const s = strs(c.args);
  const f = fds(c.args);
  switch (c.name) {
    case 'rename':
    case 'link':
      return { call: c, from: s[0], to: s[1]! };
    case 'renameat':
    case 'renameat2':
    case 'linkat':
      return { call: c, from: at(f[0], s[0]!), to: at(f[1] ?? f[0], s[1]!) };
    case 'symlink':
      return { call: c, to: s[1]! };
    case 'symlinkat':
      return { call: c, to: at(f[0], s[1]!) };
    case 'unlink':
    case 'rmdir':
      return { call: c, to: s[0]! };
    case 'unlinkat':
      return { call: c, to: at(f[0], s[0]!) };
    default:
      return null;
  }
}

/** The fd whose bytes a write-like call changes (-y path), or null. */
function writtenPath(c: Call): string | null {
  if (!c.ok) return null;
  const f = fds(c.args);
  switch (c.name) {
    case 'write':
    case 'writev':
    case 'pwrite64':
    case 'pwritev':
    case 'sendfile':
      return f[0] ?? null;
    case 'copy_file_range':
      return f[1] ?? null;
    case 'ioctl':
      return /FICLONE/.test(c.args) ? (f[0] ?? null) : null;
    case 'openat':
      // Creating or truncating is a change to the file too (an empty record must be durable as well).
      return /O_CREAT|O_TRUNC/.test(c.args) ? (/= \d+<([^>]*)>/.exec(c.args)?.[1] ?? null) : null;
    default:
      return null;
  }
}

export interface Trees4 {
  dkmsTree: string;
  installTree: string;
}

/** Which published names must be durable, and as what. */
export function category(to: string, t: Trees4): string | null {
  const name = posix.basename(to);
  if (name.includes('journal')) return 'journal';
  if (/^\.kbundle-.*\.json$/.test(name) || (to.includes('/receipts/') && name.endsWith('.json'))) return 'record';
  if (to.startsWith(`${t.dkmsTree}/.kbundle-bundles/`) && name.endsWith('.kbundle')) return 'stored bundle';
  if (dirname(dirname(to)) === t.dkmsTree && /^kernel-.+/.test(name)) return 'marker';
  if (to.startsWith(`${t.installTree}/`) && /\.ko(\.(gz|xz|zst))?$/.test(name)) return 'module';
  return null;
}

export interface OrderReport {
  renamesChecked: number;
  /** Renames inside a private (temp-named) dir: checked when that dir is published instead. */
  deferred: number;
  fsyncs: number;
  dirFsyncs: number;
  /** syncfs(2)/sync(2) calls (e.g. `sync -f`): they make everything written so far durable. */
  syncfs: number;
  violations: string[];
}

/** A dir whose name is a temp or staging name: not reachable under its final name yet. */
const isPrivate = (p: string) => p.split('/').some((c) => /\.kbundle-tmp-|\.tmp-|^\.kbundle-staging$/.test(c));

/**
 * R1 and R2 over a log. Data durability is tracked as a set of dirty paths:
 * a write (or O_CREAT/O_TRUNC open) makes a path dirty, an fsync of it or a
 * syncfs cleans it, a rename carries dirtiness (of a file, or of everything
 * under a directory) to the new name. R1 for a published name = its source
 * is clean at the rename; for a staged directory published by one rename =
 * nothing under it is dirty. Symlinks are never written, so only R2 applies
 * to them.
 */
export function checkWriteOrder(text: string, t: Trees4, root: string): OrderReport {
  const calls = readCalls(text);
  const short = (p: string) => p.split(root).join('<root>');
  const isFsync = (c: Call) => c.ok && (c.name === 'fsync' || c.name === 'fdatasync');
  const isSyncfs = (c: Call) => c.ok && (c.name === 'syncfs' || c.name === 'sync');
  const dirty = new Set<string>();
  // Paths written, and directories made, in this run (renames carry them): tell a directory rename from a file rename.
  const files = new Set<string>();
  const dirsMade = new Set<string>();
  const violations: string[] = [];
  let renamesChecked = 0;
  let deferred = 0;
  const changes = calls.map((c) => nameChange(c));
  const move = (set: Set<string>, from: string, to: string) => {
    for (const p of [...set]) {
      if (p === from) {
        set.delete(p);
        set.add(to);
      } else if (p.startsWith(`${from}/`)) {
        set.delete(p);
        set.add(to + p.slice(from.length));
      }
    }
  };
  calls.forEach((c, i) => {
    const w = writtenPath(c);
    if (w) {
      dirty.add(w);
      files.add(w);
    }
    if (c.ok && (c.name === 'mkdir' || c.name === 'mkdirat')) {
      const s0 = strs(c.args)[0];
      if (s0) dirsMade.add(at(fds(c.args)[0], s0));
    }
    if (isFsync(c)) dirty.delete(fds(c.args)[0]!);
    if (isSyncfs(c)) dirty.clear();
    const ch = changes[i];
    if (!ch) return;
    if (!/^rename/.test(c.name) || !ch.from) {
      if (c.name.startsWith('unlink')) dirty.delete(ch.to);
      return;
    }
    const from = ch.from;
    const fileDirty = dirty.has(from);
    const under = [...dirty].filter((p) => p.startsWith(`${from}/`));
    const isDir = dirsMade.has(from) || [...files, ...dirsMade].some((p) => p.startsWith(`${from}/`));
    for (const set of [dirty, files, dirsMade]) move(set, from, ch.to);
    const published = isPrivate(from) && !isPrivate(dirname(ch.to));
    const kind = category(ch.to, t) ?? (published && isDir ? 'staged dir' : null);
    if (!kind) return;
    if (isPrivate(dirname(ch.to))) {
      deferred++;
      return;
    }
    renamesChecked++;
    const line = `${c.name} ${short(from)} -> ${short(ch.to)} (${kind})`;
    if (fileDirty) violations.push(`R1: ${line}: no fsync of ${short(from)} between its last write and the rename`);
    if (under.length) violations.push(`R1: ${line}: not fsynced before the directory was published: ${under.map((p) => p.slice(from.length + 1)).join(', ')}`);
    const dir = dirname(ch.to);
    let j = i + 1;
    for (; j < calls.length; j++) {
      const x = calls[j]!;
      if ((isFsync(x) && fds(x.args)[0] === dir) || isSyncfs(x)) break;
      const next = changes[j];
      // Only changes in the trees count: a helper's temp file in /tmp does not depend on our name being durable.
      if (next && next.to !== ch.to && next.from !== ch.to && next.to.startsWith(`${root}/`)) {
        violations.push(`R2: ${line}: ${next.call.name} ${short(next.from ? `${next.from} -> ${next.to}` : next.to)} comes before an fsync of ${short(dir)}`);
        break;
      }
    }
    if (j === calls.length) violations.push(`R2: ${line}: ${short(dir)} never fsynced before exit`);
  });
  const fsyncCalls = calls.filter(isFsync);
  const dirs = new Set(calls.filter((o) => o.name === 'openat' && o.ok && /O_DIRECTORY/.test(o.args)).map((o) => /= \d+<([^>]*)>/.exec(o.args)?.[1]));
  return {
    renamesChecked,
    deferred,
    fsyncs: fsyncCalls.length,
    dirFsyncs: fsyncCalls.filter((c) => dirs.has(fds(c.args)[0])).length,
    syncfs: calls.filter(isSyncfs).length,
    violations,
  };
}

function traced(args: string[], t: Trees): OrderReport {
  const dir = mkdtempSync(join(tmpdir(), 'kbundle-order-'));
  const log = join(dir, 'strace.log');
  try {
    const r = spawnSync('strace', ['-f', '-y', '-qq', '-e', 'signal=none', '-o', log, '-e', `trace=${TRACED.join(',')}`, process.execPath, BIN, ...args], {
      encoding: 'utf8',
      cwd: REPO,
      env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
      maxBuffer: 64 << 20,
    });
    if (r.status !== 0) throw new Error(`${args.join(' ')} exits ${r.status}: ${r.stderr}`);
    return checkWriteOrder(readFileSync(log, 'utf8'), t, t.root);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(label: string, r: OrderReport): void {
  console.log(
    `[write-order] ${label}: ${r.renamesChecked} renames checked (${r.deferred} inside staging, checked at publication), ${r.fsyncs} fsyncs seen (${r.dirFsyncs} of directories), ${r.syncfs} syncfs, ${r.violations.length} violations`,
  );
}

describe('write order for power loss', () => {
  test('the checker: a correct sequence passes, each missing fsync is named', () => {
    const t = { dkmsTree: '/r/var/lib/dkms', installTree: '/r/lib/modules' };
    const good = [
      '1 openat(AT_FDCWD</>, "/r/var/lib/dkms/.kbundle-journal.json.tmp-1", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 5</r/var/lib/dkms/.kbundle-journal.json.tmp-1>',
      '1 write(5</r/var/lib/dkms/.kbundle-journal.json.tmp-1>, "{}", 2) = 2',
      '1 fsync(5</r/var/lib/dkms/.kbundle-journal.json.tmp-1>) = 0',
      '1 rename("/r/var/lib/dkms/.kbundle-journal.json.tmp-1", "/r/var/lib/dkms/.kbundle-journal.json") = 0',
      '1 openat(AT_FDCWD</>, "/r/var/lib/dkms", O_RDONLY|O_DIRECTORY) = 6</r/var/lib/dkms>',
      '1 fsync(6</r/var/lib/dkms>) = 0',
      '1 symlink("1.0/k/x86_64", "/r/var/lib/dkms/hello/kernel-k-x86_64.tmp-2") = 0',
      '1 rename("/r/var/lib/dkms/hello/kernel-k-x86_64.tmp-2", "/r/var/lib/dkms/hello/kernel-k-x86_64") = 0',
      '1 openat(AT_FDCWD</>, "/r/var/lib/dkms/hello", O_RDONLY|O_DIRECTORY) = 7</r/var/lib/dkms/hello>',
      '1 fsync(7</r/var/lib/dkms/hello>) = 0',
    ];
    const ok = checkWriteOrder(good.join('\n'), t, '/r');
    expect(ok).toEqual({ renamesChecked: 2, deferred: 0, fsyncs: 3, dirFsyncs: 2, syncfs: 0, violations: [] });
    const noDataSync = checkWriteOrder(good.filter((l) => !l.startsWith('1 fsync(5')).join('\n'), t, '/r');
    expect(noDataSync.violations).toEqual(['R1: rename <root>/var/lib/dkms/.kbundle-journal.json.tmp-1 -> <root>/var/lib/dkms/.kbundle-journal.json (journal): no fsync of <root>/var/lib/dkms/.kbundle-journal.json.tmp-1 between its last write and the rename']);
    const noDirSync = checkWriteOrder(good.filter((l) => !l.startsWith('1 fsync(6')).join('\n'), t, '/r');
    expect(noDirSync.violations).toEqual([
      'R2: rename <root>/var/lib/dkms/.kbundle-journal.json.tmp-1 -> <root>/var/lib/dkms/.kbundle-journal.json (journal): symlink <root>/var/lib/dkms/hello/kernel-k-x86_64.tmp-2 comes before an fsync of <root>/var/lib/dkms',
    ]);
    const noFinalSync = checkWriteOrder(good.slice(0, -1).join('\n'), t, '/r');
    expect(noFinalSync.violations).toEqual(['R2: rename <root>/var/lib/dkms/hello/kernel-k-x86_64.tmp-2 -> <root>/var/lib/dkms/hello/kernel-k-x86_64 (marker): <root>/var/lib/dkms/hello never fsynced before exit']);
  });

  test('the checker: a staged directory is published only with everything under it fsynced (or after a syncfs)', () => {
    const t = { dkmsTree: '/r/var/lib/dkms', installTree: '/r/lib/modules' };
    const stage = '/r/var/lib/dkms/hello/1.0/k/.x86_64.kbundle-tmp-1-ab';
    const log = (sync: string[]) =>
      [
        `1 mkdir("${stage}", 0777) = 0`,
        `1 openat(AT_FDCWD</>, "${stage}/.kbundle-build.json", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 5<${stage}/.kbundle-build.json>`,
        `1 write(5<${stage}/.kbundle-build.json>, "{}", 2) = 2`,
        ...sync,
        `1 rename("${stage}", "/r/var/lib/dkms/hello/1.0/k/x86_64") = 0`,
        '1 openat(AT_FDCWD</>, "/r/var/lib/dkms/hello/1.0/k", O_RDONLY|O_DIRECTORY) = 6</r/var/lib/dkms/hello/1.0/k>',
        '1 fsync(6</r/var/lib/dkms/hello/1.0/k>) = 0',
      ].join('\n');
    expect(checkWriteOrder(log([]), t, '/r').violations).toEqual([
      'R1: rename <root>/var/lib/dkms/hello/1.0/k/.x86_64.kbundle-tmp-1-ab -> <root>/var/lib/dkms/hello/1.0/k/x86_64 (staged dir): not fsynced before the directory was published: .kbundle-build.json',
    ]);
    expect(checkWriteOrder(log([`1 fsync(5<${stage}/.kbundle-build.json>) = 0`]), t, '/r')).toMatchObject({ renamesChecked: 1, violations: [] });
    expect(checkWriteOrder(log(['2 syncfs(3</r/var/lib/dkms>) = 0']), t, '/r')).toMatchObject({ renamesChecked: 1, syncfs: 1, violations: [] });
  });

  for (const k of [K61, K612]) {
    test(`kbundle install hello/1.0 -k ${k} (from built)`, () => {
      const base = mkdtempSync(join(tmpdir(), 'kbundle-order-'));
      const t = treesAt(join(base, 'root'));
      layout(t, k);
      depmod(t, k);
      coreState(t, k, '1.0', false);
      const r = traced(['install', 'hello/1.0', '-k', k, ...t.treeArgs], t);
      report(`install ${k}`, r);
      rmSync(base, { recursive: true, force: true });
      expect(r.renamesChecked).toBeGreaterThan(0);
      expect(r.violations).toEqual([]);
    });

    test(`kbundle bundle install -k ${k}`, () => {
      const b = buildBundle([K61, K612]);
      const base = mkdtempSync(join(tmpdir(), 'kbundle-order-'));
      const t = treesAt(join(base, 'root'));
      layout(t, k, { intree: true });
      depmod(t, k);
      const r = traced(['bundle', 'install', b, '-k', k, '--root', t.root, ...trust], t);
      report(`bundle install ${k}`, r);
      rmSync(base, { recursive: true, force: true });
      expect(r.renamesChecked).toBeGreaterThan(0);
      expect(r.violations).toEqual([]);
    });
  }
});

/**
 * dkms.conf layouts (which modules an entry has and where they go) for
 * `status` on a tree that real dkms wrote, where no kbundle record says so.
 *
 * DKMS sources the conf for every line it prints. kbundle evaluates each
 * distinct conf once per set of inputs that can change its result, and
 * remembers the answer under <cache dir>/conf/<key>.json:
 *
 * - A conf (and any override file) that src/conf/static-scan.ts calls static
 *   gives the same result for the same bytes and the same values of the
 *   variables it reads. The key is the digest of exactly that: the files'
 *   paths and contents, the values of the DKMS variables and environment
 *   variables the text reads, the --directive words, what changes how bash
 *   behaves (its binary, BASHOPTS, locale...), and the code that evaluates
 *   (kbundle's own conf modules, by content). A conf that reads none
 *   of $kernelver, $kernel_source_dir, $kernel_config and $arch (and has no
 *   PATCH_MATCH, matched against $kernelver) has one entry for all kernels.
 * - Any other conf is sourced on every run, as DKMS does, once per distinct
 *   (conf, kernel, arch) in the run.
 *
 * Only successful evaluations are remembered; a failure (syntax error, bad
 * conf, timeout) is tried again next time. Files are written atomically and
 * durably without the tree lock: readers take no lock, and a concurrent
 * writer of the same key writes the same bytes.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { SAFE_SOURCE_PROGRAM } from '../conf/bash-program.js';
import { sourceConfs } from '../conf/batch.js';
import { evaluateConf } from '../conf/evaluate.js';
import { CONF_LIMITS } from '../conf/limits.js';
import { kernelConfigPath } from '../conf/kernel-config.js';
import { readOsRelease, type OsRelease } from '../conf/os-release.js';
import { overrideFiles, visibleVariables } from '../conf/read-raw.js';
import { scanConfText, type ConfTextScan } from '../conf/static-scan.js';
import type { ConfContext } from '../conf/types.js';
import { DKMS_CONF_VARIABLES } from '../conf/whitelist.js';
import { sweepTemps, writeFileDurable } from '../util/atomic.js';

export const LAYOUT_CACHE_FORMAT = 'kbundle-conf-layout-v1';

/** <cache dir>/conf (the cache dir: --cache-dir, default in src/cli/options.ts defaultCacheDir) */
export const layoutCacheDir = (cacheDir: string): string => join(cacheDir, 'conf');

export interface ConfModuleLayout {
  destName: string;
  /** DEST_MODULE_LOCATION as the conf wrote it. */
  destLocation: string;
}

export type ConfLayoutResult = { modules: ConfModuleLayout[] } | { error: string };

/**
 * Sources and evaluates many confs: one layout or the error per context, in
 * order. The default batches static confs in one bash (src/conf/batch.ts)
 * and sources the others as DKMS would.
 */
export type ConfEvaluator = (ctxs: ConfContext[]) => Promise<(ConfModuleLayout[] | Error)[]>;

export interface LayoutResolverOptions {
  /** Where remembered layouts live; null neither reads nor writes them. */
  cacheDir: string | null;
  /** bash processes at once (default: the number of CPUs). */
  concurrency?: number;
  evaluate?: ConfEvaluator;
}

/** What a run did, for `--verbose` and the tests. */
export interface LayoutStats {
  /** Answers read from the cache. */
  remembered: number;
  /** Static confs evaluated (and written to the cache). */
  evaluated: number;
  /** Dynamic confs evaluated (never remembered). */
  dynamic: number;
}

/**
 * Environment variables bash reads at start-up that change what the same
 * text does: shell options, glob and regex behaviour (locale), where
 * safe_source's mktemp writes.
 */
const BEHAVIOUR_ENV = ['BASHOPTS', 'SHELLOPTS', 'POSIXLY_CORRECT', 'BASH_COMPAT', 'GLOBIGNORE', 'GLOBSORT', 'LC_ALL', 'LC_COLLATE', 'LC_CTYPE', 'LANG', 'TMPDIR'];

/** The compiled modules whose code decides a layout; a change to any of them is a new key. */
const ENGINE_FILES = ['../conf/batch.js', '../conf/syntax-check.js', '../conf/evaluate.js', '../conf/read-raw.js', '../conf/records.js', '../conf/bash-program.js', '../conf/limits.js', '../conf/whitelist.js', '../conf/static-scan.js', '../conf/static-scan-words.js', './layout-cache.js'];

/** Bytes that DKMS's second expansion would read as code if a value the conf reads held them. */
const CODE_BYTES = /["$`\\]/;

const WHITELISTED = new Set(DKMS_CONF_VARIABLES);

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

function evaluator(concurrency: number | undefined): ConfEvaluator {
  return async (ctxs) => {
    const sourced = await sourceConfs(ctxs, { concurrency });
    return sourced.map((r, i) => {
      if (r instanceof Error) return r;
      try {
        // The kernel config only decides BUILD_EXCLUSIVE_CONFIG, which a layout does not need.
        const conf = evaluateConf(r.raw, ctxs[i]!, null, r.regex);
        return conf.modules.map((m) => ({ destName: m.destName, destLocation: m.destLocation }));
      } catch (e) {
        return e as Error;
      }
    });
  };
}

interface FileFacts {
  sha: string;
  scan: ConfTextScan;
  mentionsPatch: boolean;
}

/** Why an input cannot be remembered, or the key it is remembered under. */
type Plan = { dynamic: string } | { key: string };

function isLayout(v: unknown): v is ConfModuleLayout[] {
  return Array.isArray(v) && v.every((m) => m && typeof m.destName === 'string' && typeof m.destLocation === 'string');
}

export class ConfLayoutResolver {
  readonly stats: LayoutStats = { remembered: 0, evaluated: 0, dynamic: 0 };
  private readonly cacheDir: string | null;
  private readonly evaluate: ConfEvaluator;
  private readonly files = new Map<string, FileFacts | null>();
  private readonly scans = new Map<string, ConfTextScan>();
  private readonly dirs = new Map<string, Set<string> | null>();
  /** Answers of this run, by key (static) or by everything bash would see (dynamic). */
  private readonly answers = new Map<string, ConfLayoutResult>();
  private readonly kconfigs = new Map<string, string>();
  private engine: string | null | undefined;
  /** One look at the environment and os-release per run: both are read for every entry. */
  private readonly env: Record<string, string | undefined> = { ...process.env };
  private readonly os: OsRelease | null = readOsRelease();
  private readonly envDirectives = Object.keys(this.env).some((n) => n.startsWith('DKMS_DIRECTIVE'));
  private readonly envFunctions = Object.keys(this.env).some((n) => n.startsWith('BASH_FUNC_'));

  constructor(opts: LayoutResolverOptions) {
    this.cacheDir = opts.cacheDir;
    this.evaluate = opts.evaluate ?? evaluator(opts.concurrency);
  }

  /** One result per context, in order; every conf that must be sourced is sourced in one go. */
  async resolve(given: ConfContext[]): Promise<ConfLayoutResult[]> {
    const ctxs = given.map((c) => this.withKernelConfig(c));
    const ids = ctxs.map((ctx) => {
      const plan = this.plan(ctx);
      return 'key' in plan ? `k:${plan.key}` : `d:${JSON.stringify([ctx.confPath, visibleVariables(ctx, this.os), ctx.directives ?? [], ctx.overridesDir ?? ''])}`;
    });
    const todo = new Map<string, ConfContext>();
    ids.forEach((id, i) => {
      if (this.answers.has(id) || todo.has(id)) return;
      const hit = id.startsWith('k:') ? this.read(id.slice(2)) : null;
      if (hit) {
        this.stats.remembered++;
        this.answers.set(id, { modules: hit });
      } else todo.set(id, ctxs[i]!);
    });
    if (todo.size) {
      const got = await this.evaluate([...todo.values()]);
      const writes: Promise<void>[] = [];
      [...todo.keys()].forEach((id, i) => {
        const r = got[i];
        const result: ConfLayoutResult = r instanceof Error || !r ? { error: r?.message ?? 'not evaluated' } : { modules: r };
        this.answers.set(id, result);
        if (id.startsWith('d:')) this.stats.dynamic++;
        else {
          this.stats.evaluated++;
          if ('modules' in result && this.cacheDir) writes.push(this.write(id.slice(2), result.modules));
        }
      });
      await Promise.all(writes);
      // A status killed mid-write leaves a temp name; nobody else looks in here.
      if (writes.length) await sweepTemps([this.cacheDir!]).catch(() => undefined);
    }
    return ids.map((id) => this.answers.get(id)!);
  }

  private async write(key: string, modules: ConfModuleLayout[]): Promise<void> {
    const body = `${JSON.stringify({ format: LAYOUT_CACHE_FORMAT, key, modules })}\n`;
    // A read-only tree (a non-root user's status) simply is not remembered.
    await writeFileDurable(join(this.cacheDir!, `${key}.json`), body).catch(() => undefined);
  }

  private read(key: string): ConfModuleLayout[] | null {
    if (!this.cacheDir) return null;
    try {
      const v = JSON.parse(readFileSync(join(this.cacheDir, `${key}.json`), 'utf8')) as { format?: unknown; key?: unknown; modules?: unknown };
      return v.format === LAYOUT_CACHE_FORMAT && v.key === key && isLayout(v.modules) ? v.modules : null;
    } catch {
      return null; // absent, or torn by a crash before the rename was durable
    }
  }

  /** $kernel_config is the same file for every entry of a kernel; kernelConfigPath looks for it on disk. */
  private withKernelConfig(ctx: ConfContext): ConfContext {
    if (ctx.kernelConfig) return ctx;
    let k = this.kconfigs.get(ctx.kernelSourceDir);
    if (k === undefined) this.kconfigs.set(ctx.kernelSourceDir, (k = kernelConfigPath(ctx)));
    return { ...ctx, kernelConfig: k };
  }

  /** The cache key for ctx, or why its evaluation must not be remembered. */
  plan(ctx: ConfContext): Plan {
    const engine = this.engineId();
    if (!engine) return { dynamic: 'bash or kbundle\'s own conf modules could not be identified' };
    if (this.envDirectives) return { dynamic: 'DKMS_DIRECTIVE* is set in the environment' };
    // An exported function may be named echo, test or [: then "static" commands run code.
    if (this.envFunctions) return { dynamic: 'the environment exports bash functions' };
    const paths = [ctx.confPath, ...this.presentOverrides(ctx)];
    const facts: FileFacts[] = [];
    for (const p of paths) {
      const f = this.fileFacts(p);
      if (!f) return { dynamic: `${p} cannot be read as a regular file within the limits` };
      if (f.scan.dynamic) return { dynamic: `${p}: ${f.scan.dynamic}` };
      facts.push(f);
    }
    const visible = visibleVariables(ctx, this.os);
    const reads = new Set(facts.flatMap((f) => [...f.scan.reads]));
    const arith = new Set(facts.flatMap((f) => [...f.scan.arithReads]));
    // PATCH_MATCH is matched against $kernelver whether or not the text reads it.
    if (facts.some((f) => f.mentionsPatch)) reads.add('kernelver');
    const vars: [string, string | null][] = [];
    for (const name of [...reads].sort()) {
      // The whitelist is unset before sourcing: nothing outside can reach it.
      if (WHITELISTED.has(name) && !(name in visible)) continue;
      const value = name in visible ? visible[name]! : (this.env[name] ?? null);
      if (value !== null && CODE_BYTES.test(value)) return { dynamic: `$${name} holds a byte DKMS's second expansion would read as code` };
      if (arith.has(name) && value !== null && !/^-?[0-9]+$/.test(value)) return { dynamic: `$${name} is used in arithmetic and is not a number` };
      vars.push([name, value]);
    }
    const material = {
      format: LAYOUT_CACHE_FORMAT,
      engine,
      files: paths.map((p, i) => [p, facts[i]!.sha]),
      vars,
      env: BEHAVIOUR_ENV.map((n) => [n, this.env[n] ?? null]),
      directives: ctx.directives ?? [],
    };
    return { key: sha256(JSON.stringify(material)) };
  }

  /** DKMS's override files that exist, listed once per directory. */
  private presentOverrides(ctx: ConfContext): string[] {
    const candidates = overrideFiles(ctx);
    if (!candidates.length || !ctx.overridesDir) return [];
    let names = this.dirs.get(ctx.overridesDir);
    if (names === undefined) {
      try {
        names = new Set(readdirSync(ctx.overridesDir));
      } catch (e) {
        // A directory that can be searched but not listed: ask for each file as read-raw does.
        names = (e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR' ? new Set() : null;
      }
      this.dirs.set(ctx.overridesDir, names);
    }
    return candidates.filter((p) => {
      if (names) return names.has(basename(p));
      try {
        accessSync(p, constants.F_OK);
        return true;
      } catch {
        return false;
      }
    });
  }

  private fileFacts(path: string): FileFacts | null {
    if (this.files.has(path)) return this.files.get(path)!;
    let facts: FileFacts | null = null;
    try {
      // A FIFO would block the read; sourceConf refuses what is not a regular file.
      const st = statSync(path);
      if (st.isFile() && st.size <= CONF_LIMITS.fileBytes) {
        const bytes = readFileSync(path);
        const sha = sha256(bytes);
        let scan = this.scans.get(sha);
        if (!scan) this.scans.set(sha, (scan = scanConfText(bytes.toString('latin1'))));
        facts = { sha, scan, mentionsPatch: bytes.includes('PATCH') };
      }
    } catch {
      facts = null;
    }
    this.files.set(path, facts);
    return facts;
  }

  /** kbundle's evaluating code and the bash that runs confs; null when either cannot be identified. */
  private engineId(): string | null {
    if (this.engine !== undefined) return this.engine;
    try {
      const h = createHash('sha256').update(SAFE_SOURCE_PROGRAM).update('\0').update(DKMS_CONF_VARIABLES.join(' '));
      h.update('\0').update(JSON.stringify(CONF_LIMITS));
      for (const f of ENGINE_FILES) h.update('\0').update(readSibling(f));
      const bash = findOnPath('bash');
      if (!bash) return (this.engine = null);
      const st = statSync(bash);
      h.update('\0').update(`${realpathSync(bash)}\0${st.dev}\0${st.ino}\0${st.size}\0${st.mtimeMs}\0${st.ctimeMs}`);
      this.engine = h.digest('hex');
    } catch {
      this.engine = null;
    }
    return this.engine;
  }
}

/**
 * A module of ours by its compiled name (its TypeScript source when running
 * from src/, as the tests do). By content, not by file times: a rebuild
 * that writes the same code must not forget every layout.
 */
function readSibling(rel: string): Buffer {
  try {
    return readFileSync(new URL(rel, import.meta.url));
  } catch {
    return readFileSync(new URL(rel.replace(/\.js$/, '.ts'), import.meta.url));
  }
}

/** The file spawn('bash') runs: the first executable of that name on PATH. */
function findOnPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Sourcing many dkms.confs in one bash, for `status` on a tree real dkms
 * wrote (dozens of confs × kernels at once).
 *
 * SAFE_SOURCE_PROGRAM costs about 50 forks per conf: DKMS's safe_source
 * forks `$(eval echo ...)` once per whitelisted variable, plus mktemp, a
 * subshell, `set | grep | cut` and rm. For a conf that static-scan.ts calls
 * static those forks cannot change the result: its array indices are plain
 * numbers (no associative arrays, IFS untouched), it sets no DKMS_DIRECTIVE
 * variable, and it reads none of the temp-file names. So here safe_source
 * keeps DKMS's two passes (the conf sourced in a subshell, then its printed
 * assignments evaluated again in the caller) with one fork per file, and
 * each conf runs in its own subshell of one long-lived bash. The rest of the
 * program (the ceiling, directives, the V and R records) is
 * SAFE_SOURCE_PROGRAM's own text, cut out of it below.
 *
 * Anything that is not static, not a readable regular file within the
 * limits, or that fails inside the batch goes through sourceConf alone, so
 * errors and limits are exactly those of read-raw.ts.
 */
import { spawn } from 'node:child_process';
import { constants, readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { SAFE_SOURCE_PROGRAM } from './bash-program.js';
import { killTree } from './kill-tree.js';
import { checkConfFile, CONF_LIMITS, rejectionMessage } from './limits.js';
import { parseRecords } from './records.js';
import { overrideFiles, sourceConf, visibleVariables, type SourcedConf } from './read-raw.js';
import { scanConfText } from './static-scan.js';
import { checkBashSyntax } from './syntax-check.js';
import type { ConfContext } from './types.js';
import { DKMS_CONF_VARIABLES } from './whitelist.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

const REGEX_SPECS = 'MAKE_MATCH:kernelver PATCH_MATCH:kernelver BUILD_EXCLUSIVE_KERNEL:kernelver BUILD_EXCLUSIVE_ARCH:arch';
const DIRECTIVE_RE = /^[A-Za-z_][A-Za-z0-9_]*=/;
/** The batch's own exit code when mktemp fails: sourceConf would fail on every conf then. */
const NO_TEMP = 90;

function cut(from: string, to: string, inclusive: boolean): string {
  const a = SAFE_SOURCE_PROGRAM.indexOf(from);
  const b = a < 0 ? -1 : SAFE_SOURCE_PROGRAM.indexOf(to, a);
  if (a < 0 || b < 0) throw new Error(`bash-program.ts changed: cannot find ${JSON.stringify(from)} ... ${JSON.stringify(to)}`);
  return SAFE_SOURCE_PROGRAM.slice(a, inclusive ? b + to.length : b);
}

/** SAFE_SOURCE_PROGRAM's address-space ceiling function. */
export const CEILING_FUNCTION = cut('_kb_ceiling() {', '\n}\n', true);
/** SAFE_SOURCE_PROGRAM from the directives to the regex verdicts, everything after the files are sourced. */
export const RECORDS_TAIL = cut('# As DKMS read_conf: directives are exported', '\nexit 0\n', false);

export const BATCH_PROGRAM = `
shopt -s extglob
# fd 3 in: the jobs. fd 3 out (as in SAFE_SOURCE_PROGRAM): the records.
exec 4<&3 3>&1 1>&2

${CEILING_FUNCTION}_kb_ceiling ${CONF_LIMITS.memoryKiB}
# A static conf cannot change the limit, so every job starts where the batch
# does: the same function, with the limit read once instead of forked for.
_kb_cur=$(ulimit -S -v)
_kb_ceiling() {
    local k n _ vm=0
    while read -r k n _; do
        [[ $k == VmSize: ]] && vm=$n
    done 2>/dev/null </proc/$BASHPID/status
    (( vm > 0 )) || return 0
    [[ $_kb_cur == unlimited ]] || (( vm + $1 < _kb_cur )) || return 0
    ulimit -S -v $((vm + $1)) 2>/dev/null
}

_kb_whitelist=$1
set --

_kb_t=$(mktemp) || exit ${NO_TEMP}
rm -f -- "$_kb_t"

# DKMS safe_source for a static conf: same passes, one fork.
safe_source() {
    local to_source_file
    to_source_file="$1"; shift
    declare -a -r export_envs=( $@ )
    local -r CR=$'\\r'
    local _kb_out
    _kb_out=$(
    . "$to_source_file" >/dev/null 3>&- 4<&-
    for _export_env in "\${export_envs[@]}"; do
        eval '_kb_ix=("\${!'"$_export_env"'[@]}")'
        for _i in "\${_kb_ix[@]}"; do
            eval '_kb_s=\${'"\${_export_env}"'[$_i]}'
            [[ $_kb_s == *"$CR" ]] && _kb_s=\${_kb_s:0:\${#_kb_s}-1}
            echo $_export_env[$_i]=\\"$_kb_s\\"
        done
    done
    )
    eval "$_kb_out" 3>&- 4<&-
}

_kb_list() {
    local -n _kb_into=$1
    local _kb_c _kb_x _kb_j
    IFS= read -r -d '' _kb_c <&4 || exit 0
    _kb_into=()
    for ((_kb_j = 0; _kb_j < _kb_c; _kb_j++)); do
        IFS= read -r -d '' _kb_x <&4
        _kb_into+=("$_kb_x")
    done
}

for (( ; ; )); do
    _kb_list _kb_vars
    _kb_list _kb_files
    IFS= read -r -d '' _kb_regex <&4
    _kb_list _kb_directives
    (
        for _kb_x in "\${_kb_vars[@]}"; do
            printf -v "\${_kb_x%%=*}" '%s' "\${_kb_x#*=}"
        done
        unset _kb_x _kb_vars
        for _kb_v in $_kb_whitelist; do unset "$_kb_v"; done
        for _kb_f in "\${_kb_files[@]}"; do
            [[ -e $_kb_f ]] && safe_source "$_kb_f" "$_kb_whitelist"
        done
${RECORDS_TAIL}
        exit 0
    )
    printf 'J\\0%s\\0\\0\\0' "$?" >&3
done
`;

export interface BatchOptions {
  /** bash processes at once (default: the number of CPUs). */
  concurrency?: number;
  /** Longest a batch may go without finishing a conf; default CONF_LIMITS.timeoutMs. */
  timeoutMs?: number;
  /** Filled in with how many contexts each path took. */
  stats?: { batched: number; alone: number };
}

type Outcome = SourcedConf | Error;

interface Job {
  index: number;
  ctx: ConfContext;
  files: string[];
}

async function existing(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    try {
      await access(p, constants.F_OK);
      out.push(p);
    } catch {
      // absent override files are the normal case
    }
  }
  return out;
}

const field = (s: string) => `${s}\0`;

/** At most n of fn at once. */
function limit(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    while (active >= n) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

function encode(job: Job): string {
  const vars = Object.entries(visibleVariables(job.ctx)).map(([k, v]) => `${k}=${v}`);
  const directives = job.ctx.directives ?? [];
  return [String(vars.length), ...vars, String(job.files.length), ...job.files, REGEX_SPECS, String(directives.length), ...directives].map(field).join('');
}

/**
 * Runs one batch. Returns an outcome for every job it finished; the caller
 * sends the others through sourceConf.
 */
function runBatch(jobs: Job[], timeoutMs: number): Promise<Map<number, Outcome>> {
  const done = new Map<number, Outcome>();
  const input = jobs.map(encode).join('');
  // BASH_ENV would make bash source a file of the user's before ours.
  const env = { ...process.env };
  delete env.BASH_ENV;
  const child = spawn('bash', ['-c', BATCH_PROGRAM, 'dkms', DKMS_CONF_VARIABLES.join(' ')], { cwd: '/', env, stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
  const jobIn = child.stdio[3] as NodeJS.WritableStream;
  jobIn.on('error', () => undefined); // bash gone early: the exit code says why
  jobIn.end(input);

  let fields: string[] = [];
  let tail = '';
  let jobBytes = 0;
  let next = 0;
  let stalled = false;
  let overflow = false;
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) killTree(child.pid);
    child.stdout?.destroy();
  };
  let timer = setTimeout(() => ((stalled = true), stop()), timeoutMs);
  child.stdout!.on('data', (b: Buffer) => {
    const parts = (tail + b.toString('latin1')).split('\0');
    tail = parts.pop()!;
    for (const p of parts) {
      fields.push(p);
      jobBytes += p.length + 1;
      if (fields.length % 4 !== 0) continue;
      if (fields[fields.length - 4] !== 'J') {
        if (jobBytes > CONF_LIMITS.outputBytes) {
          overflow = true;
          stop();
          return;
        }
        continue;
      }
      const job = jobs[next++]!;
      const status = fields[fields.length - 3];
      const records = fields.slice(0, -4);
      fields = [];
      jobBytes = 0;
      clearTimeout(timer);
      timer = setTimeout(() => ((stalled = true), stop()), timeoutMs);
      if (status !== '0') continue; // not ours to judge: sourceConf will say what went wrong
      try {
        const r = parseRecords(Buffer.from(records.map(field).join(''), 'latin1'));
        done.set(job.index, r.rejected.length ? new KbundleError(rejectionMessage(job.files, r.rejected), ExitCode.BadConf) : { raw: r.raw, regex: r.regex, files: job.files, stderr: '' });
      } catch {
        // malformed records: leave it to sourceConf
      }
    }
  });
  return new Promise((resolve) => {
    child.on('error', () => {
      clearTimeout(timer);
      resolve(done);
    });
    child.on('close', () => {
      clearTimeout(timer);
      const current = jobs[next];
      if (current && stalled) {
        done.set(current.index, new KbundleError(`sourcing ${current.files.join(', ')} did not finish within ${timeoutMs / 1000} s; stopped.`, ExitCode.BadConf));
      } else if (current && overflow) {
        done.set(current.index, new KbundleError(`sourcing ${current.files.join(', ')}: its values add up to more than ${CONF_LIMITS.outputBytes / (1024 * 1024)} MiB; stopped.`, ExitCode.BadConf));
      }
      resolve(done);
    });
  });
}

/**
 * sourceConf for many contexts: the same results and errors, one outcome
 * (a SourcedConf or the Error sourceConf would throw) per context, in order.
 * The conf's stderr passes through; SourcedConf.stderr is always ''.
 */
export async function sourceConfs(ctxs: ConfContext[], opts: BatchOptions = {}): Promise<Outcome[]> {
  const timeoutMs = opts.timeoutMs ?? CONF_LIMITS.timeoutMs;
  const out: (Outcome | undefined)[] = new Array(ctxs.length);
  const alone: number[] = [];
  const jobs: Job[] = [];
  // safe_source's DKMS_DIRECTIVE pass is left out here, and an exported function
  // can replace the builtins a static conf runs: both need the real program.
  const envNames = Object.keys(process.env);
  const batchable = !envNames.some((n) => n.startsWith('DKMS_DIRECTIVE') || n.startsWith('BASH_FUNC_'));
  const staticFile = new Map<string, boolean>();
  const gate = limit(Math.max(1, opts.concurrency ?? availableParallelism()));
  const syntax = new Map<string, Promise<Error | null>>();
  await Promise.all(
    ctxs.map(async (ctx, index) => {
      try {
        await access(ctx.confPath, constants.R_OK);
      } catch {
        alone.push(index);
        return;
      }
      const files = [ctx.confPath, ...(await existing(overrideFiles(ctx)))];
      const fine = (ctx.directives ?? []).every((d) => DIRECTIVE_RE.test(d)) && [...files, ...(ctx.directives ?? []), ...Object.values(visibleVariables(ctx))].every((s) => !s.includes('\0'));
      const isStatic = (f: string): boolean => {
        let s = staticFile.get(f);
        if (s === undefined) {
          try {
            checkConfFile(f);
            s = scanConfText(readFileSync(f, 'latin1')).dynamic === null;
          } catch {
            s = false;
          }
          staticFile.set(f, s);
        }
        return s;
      };
      if (!batchable || !fine || !files.every(isStatic)) {
        alone.push(index);
        return;
      }
      for (const f of files) {
        let check = syntax.get(f);
        if (!check) {
          check = gate(() => checkBashSyntax(f)).then(
            () => null,
            (e: Error) => e,
          );
          syntax.set(f, check);
        }
        const err = await check;
        if (err) {
          out[index] = err;
          return;
        }
      }
      jobs.push({ index, ctx, files });
    }),
  );
  jobs.sort((a, b) => a.index - b.index);

  let todo = jobs;
  while (todo.length) {
    const n = Math.min(Math.max(1, opts.concurrency ?? availableParallelism()), Math.ceil(todo.length / 4));
    const size = Math.ceil(todo.length / n);
    const chunks = Array.from({ length: n }, (_, i) => todo.slice(i * size, (i + 1) * size)).filter((c) => c.length);
    const results = await Promise.all(chunks.map((c) => runBatch(c, timeoutMs)));
    const left: Job[] = [];
    chunks.forEach((c, i) => {
      const got = results[i]!;
      for (const j of c) {
        const o = got.get(j.index);
        if (o) {
          out[j.index] = o;
          if (opts.stats) opts.stats.batched++;
        } else left.push(j);
      }
    });
    // A batch that made no progress at all is not retried as a batch.
    if (left.length === todo.length) {
      alone.push(...left.map((j) => j.index));
      break;
    }
    // Jobs after one that stopped a batch, or after a crash, get another batch.
    todo = left;
  }

  // Each of these is two bash processes of its own.
  if (opts.stats) opts.stats.alone += alone.length;
  let cursor = 0;
  const worker = async () => {
    while (cursor < alone.length) {
      const index = alone[cursor++]!;
      try {
        out[index] = await sourceConf(ctxs[index]!);
      } catch (e) {
        out[index] = e as Error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? availableParallelism()) }, worker));
  return out.map((o) => o ?? new Error('not evaluated'));
}

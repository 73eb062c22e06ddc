/**
 * The word level of the static dkms.conf check (static-scan.ts): quoting,
 * escapes, parameter and arithmetic expansion, one shell word at a time.
 * Split from the statement level so each file reads on its own; the rules
 * and their reasons are in static-scan.ts and docs/performance.md.
 */

/** Commands a static text may run: builtins whose only effects are an exit status or output DKMS throws away. */
export const ALLOWED_COMMANDS = new Set(['[', 'test', 'echo', 'true', 'false', ':', 'export', 'unset', 'break', 'continue']);
export const KEYWORDS_CONTINUE = new Set(['if', 'then', 'elif', 'else', 'while', 'until', 'do', '!', '{']);
export const KEYWORDS_END = new Set(['fi', 'done', '}']);

/**
 * Names whose value bash itself sets from the process, the machine, the
 * clock or the position in a file, plus the names DKMS's safe_source and
 * kbundle's program use while the conf runs.
 */
export const PROCESS_NAMES = new Set([
  'BASH', 'BASHOPTS', 'BASHPID', 'BASH_ALIASES', 'BASH_ARGC', 'BASH_ARGV', 'BASH_ARGV0', 'BASH_CMDS', 'BASH_COMMAND',
  'BASH_EXECUTION_STRING', 'BASH_LINENO', 'BASH_LOADABLES_PATH', 'BASH_SOURCE', 'BASH_SUBSHELL', 'BASH_VERSINFO',
  'BASH_VERSION', 'COLUMNS', 'COMP_CWORD', 'COMP_KEY', 'COMP_LINE', 'COMP_POINT', 'COMP_TYPE', 'COMP_WORDBREAKS',
  'COMP_WORDS', 'COPROC', 'DIRSTACK', 'EPOCHREALTIME', 'EPOCHSECONDS', 'EUID', 'FUNCNAME', 'GROUPS', 'HISTCMD',
  'HOSTNAME', 'HOSTTYPE', 'IFS', 'LINENO', 'LINES', 'MACHTYPE', 'OLDPWD', 'OPTARG', 'OPTERR', 'OPTIND', 'OSTYPE',
  'PIPESTATUS', 'PPID', 'PWD', 'RANDOM', 'READLINE_LINE', 'READLINE_POINT', 'REPLY', 'SECONDS', 'SHELLOPTS', 'SHLVL',
  'SRANDOM', 'UID',
  // safe_source's locals and loop variables, and the program's own
  'to_source_file', 'export_envs', 'CR', 'tmpfile', '_export_env', '_i', 'directive', 'directive_name', 'directive_value',
]);

/** `[`/`test`/`[[` operators that look at the file system or the terminal. */
export const FILE_TESTS = new Set(['-b', '-c', '-d', '-e', '-f', '-g', '-h', '-k', '-p', '-r', '-s', '-t', '-u', '-w', '-x', '-G', '-L', '-N', '-O', '-S', '-nt', '-ot', '-ef']);

export const NAME_START = /[A-Za-z_]/;
export const NAME_CHAR = /[A-Za-z0-9_]/;
export const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?\+?=/;
/** Bytes DKMS's second expansion would treat as code if a value held them. */
export const ESCAPE_HAZARD = new Set(['"', '$', '`', '\\']);

/** Thrown with the reason (and line) as soon as the text is not static. */
export class Dynamic extends Error {}

export interface Word {
  /** The source text of the word. */
  raw: string;
  /** Whether raw has no quotes or expansions (for keywords and operators). */
  plain: boolean;
  /** Characters the word produces, with \0 where an expansion goes. */
  lit: string;
  /** An unquoted *, ? or [...] that pathname expansion would act on. */
  unquotedGlob: boolean;
}

export abstract class WordScanner {
  /** After `NAME=(`: the statement level reads the compound value. */
  protected abstract compound(): void;

  protected i = 0;
  readonly reads = new Set<string>();
  readonly arithReads = new Set<string>();
  constructor(protected readonly t: string) {}

  protected line(at = this.i): number {
    let n = 1;
    for (let k = 0; k < at && k < this.t.length; k++) if (this.t.charCodeAt(k) === 10) n++;
    return n;
  }

  protected fail(why: string, at = this.i): never {
    throw new Dynamic(`line ${this.line(at)}: ${why}`);
  }

  protected peek(o = 0): string {
    return this.t[this.i + o] ?? '';
  }

  protected read(name: string): void {
    if (PROCESS_NAMES.has(name) || name.startsWith('_kb_') || name.startsWith('DKMS_DIRECTIVE')) {
      this.fail(`reads $${name}, which depends on the process, not the text`);
    }
    this.reads.add(name);
  }

  protected readArith(name: string): void {
    this.read(name);
    this.arithReads.add(name);
  }

  /** Blanks and backslash-newlines; never newlines. */
  protected skipBlanks(): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\r') this.i++;
      else if (c === '\\' && this.peek(1) === '\n') this.i += 2;
      else return;
    }
  }

  protected skipComment(): void {
    while (this.i < this.t.length && this.t[this.i] !== '\n') this.i++;
  }

  /** `$...` at this.i, in any context; returns after it. */
  protected dollar(): void {
    const n = this.peek(1);
    if (n === '(') {
      if (this.peek(2) !== '(') this.fail('runs a command substitution $(...)');
      this.i += 3;
      this.arith('))');
      return;
    }
    if (n === '{') {
      this.brace();
      return;
    }
    if (NAME_START.test(n)) {
      let j = this.i + 1;
      while (j < this.t.length && NAME_CHAR.test(this.t[j]!)) j++;
      this.read(this.t.slice(this.i + 1, j));
      this.i = j;
      return;
    }
    if (n === "'" || n === '"') this.fail(`uses $${n}...${n} quoting`);
    if (n === '[') this.fail('uses $[...] arithmetic');
    if (n && '$!#@*-?_0123456789'.includes(n)) this.fail(`reads the special parameter $${n}`);
    this.fail('has a literal $ that DKMS\'s second expansion would act on');
  }

  /** `${...}`: the parameter, its subscript, and the operator's words. */
  protected brace(): void {
    const start = this.i;
    this.i += 2;
    if (this.peek() === '!') this.fail('uses indirect expansion ${!...}');
    if (this.peek() === '#' && NAME_START.test(this.peek(1))) this.i++;
    if (!NAME_START.test(this.peek())) this.fail('reads a special parameter in ${...}');
    let j = this.i;
    while (j < this.t.length && NAME_CHAR.test(this.t[j]!)) j++;
    const name = this.t.slice(this.i, j);
    this.read(name);
    this.i = j;
    if (this.peek() === '[') this.subscript();
    if (this.peek() === '@') this.fail('uses a ${...@op} transformation');
    if ((this.peek() === ':' && this.peek(1) === '=') || this.peek() === '=') {
      // ${X:=word} assigns; X is read (and may come from the environment) first.
    }
    // The operator's word: quotes, nested expansions and escapes, up to the matching }.
    let depth = 0;
    for (;;) {
      const c = this.peek();
      if (c === '') this.fail('has an unterminated ${', start);
      if (c === '}' && depth === 0) {
        this.i++;
        return;
      }
      if (c === '{') depth++;
      else if (c === '}') depth--;
      if (c === '\\') {
        this.escape(false);
        continue;
      }
      if (c === "'") {
        this.single();
        continue;
      }
      if (c === '"') {
        this.double();
        continue;
      }
      if (c === '`') this.fail('runs a command substitution `...`');
      if (c === '$') {
        this.dollar();
        continue;
      }
      this.i++;
    }
  }

  /** `[expr]` after a name: an arithmetic subscript. */
  protected subscript(): void {
    const start = this.i;
    this.i++;
    this.arith(']', start);
  }

  /**
   * Arithmetic up to `close` ('))' or ']'): names are read as variables,
   * whose values bash evaluates as expressions in turn.
   */
  protected arith(close: string, start = this.i): void {
    let depth = 0;
    for (;;) {
      const c = this.peek();
      if (c === '') this.fail('has unterminated arithmetic', start);
      if (depth === 0 && this.t.startsWith(close, this.i)) {
        this.i += close.length;
        return;
      }
      if (c === '(' || c === '[') depth++;
      else if (c === ')' || c === ']') depth--;
      if (c === '$') {
        this.dollar();
        continue;
      }
      if (c === '`' || c === "'" || c === '"' || c === '\\') this.fail(`has ${c} inside arithmetic`);
      if (NAME_CHAR.test(c)) {
        let j = this.i;
        while (j < this.t.length && NAME_CHAR.test(this.t[j]!)) j++;
        // A number (0x1f, 8#17) is not a name; what follows # is digits of its base.
        if (NAME_START.test(c)) this.readArith(this.t.slice(this.i, j));
        else if (this.t[j] === '#') while (j + 1 < this.t.length && NAME_CHAR.test(this.t[j + 1]!)) j++;
        this.i = j;
        continue;
      }
      this.i++;
    }
  }

  /**
   * A backslash outside single quotes. In double quotes only \$ \` \" \\
   * are escapes, and each of those would put a byte into a value that DKMS's
   * second expansion reads as code.
   */
  protected escape(inDouble: boolean): string {
    const n = this.peek(1);
    if (n === '\n') {
      this.i += 2;
      return '';
    }
    if (ESCAPE_HAZARD.has(n)) this.fail(`escapes ${n}, which DKMS's second expansion would read as code`);
    this.i += 2;
    return inDouble ? `\\${n}` : n;
  }

  /**
   * '...': literal in the first pass, but DKMS's second expansion runs on
   * the value inside double quotes, so $NAME in it is a read and anything
   * that would be code there makes the text dynamic.
   */
  protected single(): string {
    const start = this.i;
    const end = this.t.indexOf("'", this.i + 1);
    if (end < 0) this.fail('has an unterminated \'', start);
    const seg = this.t.slice(this.i + 1, end);
    for (let k = 0; k < seg.length; k++) {
      const c = seg[k]!;
      if (c === '"' || c === '`') this.fail(`has ${c} in single quotes, which DKMS's second expansion would read as code`, start);
      if (c === '\\' && (k + 1 >= seg.length || ESCAPE_HAZARD.has(seg[k + 1]!) || seg[k + 1] === '\n')) {
        this.fail('has a backslash in single quotes that DKMS\'s second expansion would read as an escape', start);
      }
      if (c === '$') {
        let j = k + 1;
        const braced = seg[j] === '{';
        if (braced) j++;
        if (!NAME_START.test(seg[j] ?? '')) this.fail('has a $ in single quotes that DKMS\'s second expansion would act on', start);
        const s = j;
        while (j < seg.length && NAME_CHAR.test(seg[j]!)) j++;
        this.read(seg.slice(s, j));
        // Only ${NAME} is recognised in the second pass; an operator there is not.
        if (braced && seg[j] !== '}') this.fail('has a ${...} with an operator in single quotes', start);
      }
    }
    this.i = end + 1;
    return seg;
  }

  /** "...": returns what it produces, \0 for each expansion. */
  protected double(): string {
    const start = this.i;
    this.i++;
    let lit = '';
    for (;;) {
      const c = this.peek();
      if (c === '') this.fail('has an unterminated "', start);
      if (c === '"') {
        this.i++;
        return lit;
      }
      if (c === '\\') lit += this.escape(true);
      else if (c === '$') {
        this.dollar();
        lit += '\0';
      } else if (c === '`') this.fail('runs a command substitution `...`');
      else {
        lit += c;
        this.i++;
      }
    }
  }

  /** One shell word at this.i (blanks already skipped). */
  protected word(): Word {
    const start = this.i;
    let lit = '';
    let plain = true;
    let unquotedGlob = false;
    let openBracket = false;
    while (this.i < this.t.length) {
      const c = this.peek();
      if (' \t\r\n;&|<>'.includes(c)) break;
      if (c === '(' || c === ')') {
        // NAME=( ... ): a compound array assignment, whose elements are words.
        if (c === '(' && ASSIGNMENT.test(`${this.t.slice(start, this.i)}`) && this.t.slice(start, this.i).endsWith('=')) {
          this.compound();
          plain = false;
          continue;
        }
        break;
      }
      if (c === '\\') {
        const before = this.i;
        const e = this.escape(false);
        if (this.i - before === 2 && e) plain = false;
        lit += e;
        continue;
      }
      if (c === "'") {
        lit += this.single();
        plain = false;
        continue;
      }
      if (c === '"') {
        lit += this.double();
        plain = false;
        continue;
      }
      if (c === '$') {
        this.dollar();
        lit += '\0';
        plain = false;
        continue;
      }
      if (c === '`') this.fail('runs a command substitution `...`');
      if (c === '~' && (this.i === start || '=:'.includes(this.t[this.i - 1]!))) {
        const n = this.peek(1);
        if (NAME_CHAR.test(n) || n === '+' || n === '-') this.fail('uses ~user, ~+ or ~- expansion');
        this.read('HOME');
        lit += '\0';
        this.i++;
        continue;
      }
      if (c === '*' || c === '?') unquotedGlob = true;
      if (c === '[') openBracket = true;
      if (c === ']' && openBracket) unquotedGlob = true;
      if ((c === '@' || c === '+' || c === '!') && this.peek(1) === '(') this.fail('uses an extglob pattern');
      lit += c;
      this.i++;
    }
    return { raw: this.t.slice(start, this.i), plain, lit, unquotedGlob };
  }
}

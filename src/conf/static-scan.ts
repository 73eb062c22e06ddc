/**
 * A lexical check of a dkms.conf (or override file) that decides whether its
 * evaluation can be remembered: a "static" text only assigns variables,
 * tests strings and branches, so what bash makes of it is fixed by its bytes
 * and the values of the variables it reads. Anything that could make two
 * evaluations of the same bytes differ (running a program, reading a file or
 * the file system, the time, the process, a glob, indirection, code that
 * DKMS's second expansion would run) makes it dynamic, and kbundle then
 * sources it every time, as DKMS does.
 *
 * This is deliberately a recogniser of a small, common subset, not a bash
 * parser: whatever it does not recognise is dynamic. The subset and its
 * reasons are in docs/performance.md ("Which confs are remembered").
 */

export interface ConfTextScan {
  /** Why the text is not static (with its line), or null when it is. */
  dynamic: string | null;
  /** Variables the text reads ($NAME, ${NAME...}, arithmetic names, ~ as HOME), including in DKMS's second expansion. */
  reads: Set<string>;
  /** Variables read by arithmetic, where a value is itself evaluated as an expression. */
  arithReads: Set<string>;
}

/** Commands a static text may run: builtins whose only effects are an exit status or output DKMS throws away. */
const ALLOWED_COMMANDS = new Set(['[', 'test', 'echo', 'true', 'false', ':', 'export', 'unset', 'break', 'continue']);
const KEYWORDS_CONTINUE = new Set(['if', 'then', 'elif', 'else', 'while', 'until', 'do', '!', '{']);
const KEYWORDS_END = new Set(['fi', 'done', '}']);

/**
 * Names whose value bash itself sets from the process, the machine, the
 * clock or the position in a file, plus the names DKMS's safe_source and
 * kbundle's program use while the conf runs.
 */
const PROCESS_NAMES = new Set([
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
const FILE_TESTS = new Set(['-b', '-c', '-d', '-e', '-f', '-g', '-h', '-k', '-p', '-r', '-s', '-t', '-u', '-w', '-x', '-G', '-L', '-N', '-O', '-S', '-nt', '-ot', '-ef']);

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?\+?=/;
/** Bytes DKMS's second expansion would treat as code if a value held them. */
const ESCAPE_HAZARD = new Set(['"', '$', '`', '\\']);

class Dynamic extends Error {}

interface Word {
  /** The source text of the word. */
  raw: string;
  /** Whether raw has no quotes or expansions (for keywords and operators). */
  plain: boolean;
  /** Characters the word produces, with \0 where an expansion goes. */
  lit: string;
  /** An unquoted *, ? or [...] that pathname expansion would act on. */
  unquotedGlob: boolean;
}

class Scanner {
  private i = 0;
  readonly reads = new Set<string>();
  readonly arithReads = new Set<string>();
  constructor(private readonly t: string) {}

  private line(at = this.i): number {
    let n = 1;
    for (let k = 0; k < at && k < this.t.length; k++) if (this.t.charCodeAt(k) === 10) n++;
    return n;
  }

  private fail(why: string, at = this.i): never {
    throw new Dynamic(`line ${this.line(at)}: ${why}`);
  }

  private peek(o = 0): string {
    return this.t[this.i + o] ?? '';
  }

  private read(name: string): void {
    if (PROCESS_NAMES.has(name) || name.startsWith('_kb_') || name.startsWith('DKMS_DIRECTIVE')) {
      this.fail(`reads $${name}, which depends on the process, not the text`);
    }
    this.reads.add(name);
  }

  private readArith(name: string): void {
    this.read(name);
    this.arithReads.add(name);
  }

  /** Blanks and backslash-newlines; never newlines. */
  private skipBlanks(): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\r') this.i++;
      else if (c === '\\' && this.peek(1) === '\n') this.i += 2;
      else return;
    }
  }

  private skipComment(): void {
    while (this.i < this.t.length && this.t[this.i] !== '\n') this.i++;
  }

  /** `$...` at this.i, in any context; returns after it. */
  private dollar(): void {
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
  private brace(): void {
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
  private subscript(): void {
    const start = this.i;
    this.i++;
    this.arith(']', start);
  }

  /**
   * Arithmetic up to `close` ('))' or ']'): names are read as variables,
   * whose values bash evaluates as expressions in turn.
   */
  private arith(close: string, start = this.i): void {
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
  private escape(inDouble: boolean): string {
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
  private single(): string {
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
  private double(): string {
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
  private word(): Word {
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

  /** After `NAME=(`: words up to `)`, newlines and comments allowed. */
  private compound(): void {
    const start = this.i;
    this.i++;
    for (;;) {
      this.skipBlanks();
      const c = this.peek();
      if (c === '') this.fail('has an unterminated (', start);
      if (c === '\n') {
        this.i++;
        continue;
      }
      if (c === '#') {
        this.skipComment();
        continue;
      }
      if (c === ')') {
        this.i++;
        return;
      }
      const w = this.word();
      if (w.raw === '') this.fail(`has ${c} inside an array assignment`);
      if (w.unquotedGlob) this.fail('has a glob in an array assignment, which expands against the file system');
      const sub = /^\[([^\]]*)\]=/.exec(w.raw);
      if (sub) this.arithText(sub[1]!);
      this.valueCheck(w, sub);
    }
  }

  /** NAME=, NAME[sub]= or NAME+=: the subscript is arithmetic; bash's own names are off limits. */
  private assigns(asg: RegExpExecArray, at: number): void {
    const name = asg[1]!;
    if (PROCESS_NAMES.has(name) || name.startsWith('_kb_') || name.startsWith('DKMS_DIRECTIVE')) this.fail(`assigns ${name}`, at);
    if (asg[2]) this.arithText(asg[2].slice(1, -1));
  }

  /** Names in an arithmetic text that came out of a word (a subscript). */
  private arithText(text: string): void {
    for (const m of text.matchAll(/\$?\{?([A-Za-z_][A-Za-z0-9_]*)/g)) this.readArith(m[1]!);
  }

  /**
   * A value holding a glob character with whitespace (or an expansion that
   * may add some) around it: DKMS's second expansion echoes values unquoted,
   * so such a word would expand against the working directory.
   */
  private valueCheck(w: Word, assignment: RegExpExecArray | null): void {
    const prefix = assignment ? /^(?:[A-Za-z_][A-Za-z0-9_]*)?(?:\[[^\]]*\])?\+?=/.exec(w.lit) : null;
    const value = prefix ? w.lit.slice(prefix[0].length) : w.lit;
    if (/[*?]|\[[^\]]*\]/.test(value) && /[\s\0]/.test(value)) {
      this.fail('has a value with a glob character and whitespace, which DKMS\'s second expansion expands against the file system');
    }
  }

  /** A redirection at this.i (after any fd digits). Only output to /dev/null or another fd is static. */
  private redirection(): void {
    const start = this.i;
    if (this.peek() === '&') this.i++;
    const op = this.peek();
    if (op === '<') this.fail('reads a file with <', start);
    this.i++;
    if (this.peek() === '>' || this.peek() === '|') this.i++;
    let dup = false;
    if (this.peek() === '&') {
      dup = true;
      this.i++;
    }
    this.skipBlanks();
    const target = this.word();
    // Only stdout and stderr: kbundle's program keeps its own records on another descriptor.
    if (dup ? !/^[12]$/.test(target.raw) : target.raw !== '/dev/null') this.fail('writes somewhere other than /dev/null, stdout or stderr', start);
  }

  /** `[[ ... ]]` after the opening word: reads and file tests, no pathname expansion. */
  private doubleBracket(): void {
    const start = this.i;
    for (;;) {
      this.skipBlanks();
      const c = this.peek();
      if (c === '') this.fail('has an unterminated [[', start);
      if (c === '\n') {
        this.i++;
        continue;
      }
      if (c === ']' && this.peek(1) === ']') {
        this.i += 2;
        return;
      }
      if ('()<>!&|'.includes(c)) {
        this.i++;
        continue;
      }
      const w = this.word();
      if (w.raw === '') this.fail(`has ${c} inside [[ ]]`);
      if (w.plain && (FILE_TESTS.has(w.raw) || w.raw === '-a')) this.fail(`tests the file system with ${w.raw}`);
    }
  }

  /** `for` after the keyword. */
  private forLoop(): void {
    this.skipBlanks();
    if (this.peek() === '(' && this.peek(1) === '(') {
      this.i += 2;
      this.arith('))');
      return;
    }
    const name = this.word();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name.raw) || PROCESS_NAMES.has(name.raw)) this.fail('has a for loop without a plain variable of its own');
    this.skipBlanks();
    while (this.peek() === '\n') {
      this.i++;
      this.skipBlanks();
    }
    const kw = this.word();
    if (kw.raw !== 'in') this.fail('loops over the positional parameters');
    for (;;) {
      this.skipBlanks();
      const c = this.peek();
      if (c === '' || c === '\n' || c === ';') return;
      if (c === '#') {
        this.skipComment();
        return;
      }
      const w = this.word();
      if (w.raw === '') this.fail(`has ${c} in a for list`);
      if (w.unquotedGlob) this.fail('loops over a glob, which expands against the file system');
    }
  }

  scan(): void {
    type Frame = 'case-pattern' | 'case-body' | 'paren';
    const stack: Frame[] = [];
    let cmdPos = true;
    let command: string | null = null;
    let argIndex = 0;
    let prevArg = '';
    while (this.i < this.t.length) {
      this.skipBlanks();
      const c = this.peek();
      if (c === '') break;
      if (c === '#') {
        this.skipComment();
        continue;
      }
      if (c === '\n') {
        this.i++;
        cmdPos = true;
        command = null;
        continue;
      }
      if (c === ';') {
        if (this.peek(1) === ';' || this.peek(1) === '&') {
          if (stack.at(-1) !== 'case-body') this.fail('has ;; outside a case');
          this.i += this.t.startsWith(';;&', this.i) ? 3 : 2;
          stack[stack.length - 1] = 'case-pattern';
        } else this.i++;
        cmdPos = true;
        command = null;
        continue;
      }
      if (c === '&') {
        if (this.peek(1) === '&') {
          this.i += 2;
          cmdPos = true;
          command = null;
          continue;
        }
        if (this.peek(1) === '>') {
          this.redirection();
          continue;
        }
        this.fail('runs something in the background');
      }
      if (c === '|') {
        this.i += this.peek(1) === '|' || this.peek(1) === '&' ? 2 : 1;
        cmdPos = true;
        command = null;
        continue;
      }
      if (c === '<' || c === '>') {
        this.redirection();
        continue;
      }
      if (/[0-9]/.test(c)) {
        let j = this.i;
        while (/[0-9]/.test(this.t[j] ?? '')) j++;
        if (this.t[j] === '<' || this.t[j] === '>') {
          if (!/^[12]$/.test(this.t.slice(this.i, j))) this.fail('redirects a descriptor other than stdout or stderr');
          this.i = j;
          this.redirection();
          continue;
        }
      }
      if (stack.at(-1) === 'case-pattern') {
        // Patterns up to `)`, or the closing esac.
        if (c === '(') this.i++;
        const w = this.word();
        if (w.raw === 'esac') {
          stack.pop();
          cmdPos = false;
          continue;
        }
        for (;;) {
          this.skipBlanks();
          if (this.peek() === '|') {
            this.i++;
            this.skipBlanks();
            this.word();
            continue;
          }
          if (this.peek() === ')') break;
          this.fail('has a case pattern this check does not recognise');
        }
        this.i++;
        stack[stack.length - 1] = 'case-body';
        cmdPos = true;
        continue;
      }
      if (c === '(') {
        if (!cmdPos) this.fail('has ( where a command would not start');
        if (this.peek(1) === '(') {
          this.i += 2;
          this.arith('))');
          cmdPos = false;
          continue;
        }
        this.i++;
        stack.push('paren');
        continue;
      }
      if (c === ')') {
        if (stack.at(-1) !== 'paren') this.fail('has an unmatched )');
        stack.pop();
        this.i++;
        cmdPos = false;
        continue;
      }
      const at = this.i;
      const w = this.word();
      if (w.raw === '') this.fail(`has ${c} where this check expects a word`);
      if (cmdPos) {
        const asg = ASSIGNMENT.exec(w.raw);
        if (asg) {
          this.assigns(asg, at);
          this.valueCheck(w, asg);
          continue;
        }
        if (!w.plain) this.fail('runs a command whose name is computed', at);
        const name = w.raw;
        if (KEYWORDS_CONTINUE.has(name)) continue;
        if (KEYWORDS_END.has(name)) {
          cmdPos = false;
          continue;
        }
        if (name === 'case') {
          this.skipBlanks();
          this.word();
          for (;;) {
            this.skipBlanks();
            if (this.peek() !== '\n') break;
            this.i++;
          }
          if (this.word().raw !== 'in') this.fail('has a case without in');
          stack.push('case-pattern');
          continue;
        }
        if (name === 'esac') {
          if (stack.at(-1) !== 'case-body') this.fail('has an unmatched esac');
          stack.pop();
          cmdPos = false;
          continue;
        }
        if (name === 'for') {
          this.forLoop();
          cmdPos = false;
          continue;
        }
        if (name === '[[') {
          this.doubleBracket();
          cmdPos = false;
          continue;
        }
        if (!ALLOWED_COMMANDS.has(name)) this.fail(`runs ${name.length > 40 ? `${name.slice(0, 40)}...` : name}`, at);
        command = name;
        argIndex = 0;
        prevArg = '';
        cmdPos = false;
        continue;
      }
      // An argument of an allowed command.
      if (command === 'export' || command === 'unset') {
        if (w.raw.startsWith('-')) this.fail(`uses ${command} ${w.raw}`, at);
        const asg = ASSIGNMENT.exec(w.raw);
        if (asg) {
          this.assigns(asg, at);
          this.valueCheck(w, asg);
        } else if (PROCESS_NAMES.has(w.raw)) this.fail(`${command}s ${w.raw}`, at);
        else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(w.raw)) this.fail(`${command}s a computed name`, at);
      } else if (command === '[' || command === 'test') {
        // `-a` is also the binary "and"; it is a file test where an operand starts.
        const operandStart = argIndex === 0 || ['!', '(', '-a', '-o'].includes(prevArg);
        if (w.plain && (FILE_TESTS.has(w.raw) || (w.raw === '-a' && operandStart))) this.fail(`tests the file system with ${w.raw}`, at);
        if (w.unquotedGlob) this.fail('has a glob argument, which expands against the file system', at);
      } else if (w.unquotedGlob && command !== 'echo') {
        this.fail('has a glob argument, which expands against the file system', at);
      }
      prevArg = w.plain ? w.raw : '';
      argIndex++;
    }
    if (stack.length) this.fail(`ends inside ${stack.at(-1) === 'paren' ? '( )' : 'case'}`);
  }
}

export function scanConfText(text: string): ConfTextScan {
  const s = new Scanner(text);
  try {
    s.scan();
    return { dynamic: null, reads: s.reads, arithReads: s.arithReads };
  } catch (e) {
    if (e instanceof Dynamic) return { dynamic: e.message, reads: s.reads, arithReads: s.arithReads };
    throw e;
  }
}

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

import { ALLOWED_COMMANDS, ASSIGNMENT, Dynamic, FILE_TESTS, KEYWORDS_CONTINUE, KEYWORDS_END, PROCESS_NAMES, type Word, WordScanner } from './static-scan-words.js';

export interface ConfTextScan {
  /** Why the text is not static (with its line), or null when it is. */
  dynamic: string | null;
  /** Variables the text reads ($NAME, ${NAME...}, arithmetic names, ~ as HOME), including in DKMS's second expansion. */
  reads: Set<string>;
  /** Variables read by arithmetic, where a value is itself evaluated as an expression. */
  arithReads: Set<string>;
}


class Scanner extends WordScanner {
  /** After `NAME=(`: words up to `)`, newlines and comments allowed. */
  protected compound(): void {
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

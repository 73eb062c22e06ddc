import { readFile, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { LineCounter, isMap, isNode, isScalar, parseDocument, visit, type Document, type Node } from 'yaml';
import { KbundleError } from '../util/errors.js';
import type { Manifest, RawManifest } from './types.js';
import { ExitCode } from '../util/exit-codes.js';

export const SCHEMA_PATH = resolve(dirname(new URL(import.meta.url).pathname), '../../schema/kbundle.schema.json');

let validator: ReturnType<Ajv2020['compile']> | null = null;
function validate(): ReturnType<Ajv2020['compile']> {
  if (!validator) {
    const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
    addFormats.default(ajv);
    validator = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as object);
  }
  return validator;
}

interface Problem {
  /** -1: about the file as a whole, listed after the positioned ones. */
  offset: number;
  message: string;
}

/**
 * A manifest names a few directories and kernels; the largest real one is a
 * couple of KiB. The byte cap bounds everything the YAML parser and the
 * schema check can be made to do (docs/manifest.md, "Limits").
 */
export const MANIFEST_LIMITS = {
  bytes: 64 * 1024,
  /** YAML alias expansions (yaml's maxAliasCount): far above any real use, far below a "billion laughs". */
  aliases: 100,
  /** Problems listed; the rest are counted. */
  problems: 50,
} as const;

/**
 * Reads kbundle.yaml. Every problem is reported as `file:line:col: what`,
 * syntax and schema alike, all at once. YAML warnings (unknown tags, which
 * `yaml` would otherwise resolve to plain strings) count as errors, and so do
 * duplicate keys: a manifest that means something other than it says is
 * worse than one that fails.
 */
export async function loadManifest(path: string): Promise<Manifest> {
  const file = resolve(path);
  let text: string;
  try {
    // A FIFO or /dev/zero would never finish reading; a huge file is refused unread.
    const st = await stat(file);
    if (!st.isFile()) throw new KbundleError(`${file}: not a regular file; a manifest must be one.`, ExitCode.BadManifest);
    if (st.size > MANIFEST_LIMITS.bytes) throw tooBig(file, st.size);
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof KbundleError) throw e;
    throw new KbundleError(`cannot read manifest ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ExitCode.BadManifest);
  }
  return parseManifest(text, file);
}

function tooBig(file: string, bytes: number): KbundleError {
  return new KbundleError(`${file}: ${bytes} bytes; kbundle refuses a manifest over ${MANIFEST_LIMITS.bytes / 1024} KiB.`, ExitCode.BadManifest);
}

export function parseManifest(text: string, file: string): Manifest {
  const bytes = Buffer.byteLength(text);
  if (bytes > MANIFEST_LIMITS.bytes) throw tooBig(file, bytes);
  const lc = new LineCounter();
  const problems: Problem[] = [];
  try {
    // yaml's own uniqueKeys check compares every key with every other one
    // (20,000 keys: 4 s); duplicateKeys() below does it with a Map.
    const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false, strict: true });
    problems.push(...[...doc.errors, ...doc.warnings].map((e) => ({ offset: e.pos[0], message: yamlMessage(e.message) })));
    if (problems.length === 0) problems.push(...keyProblems(doc));
    if (problems.length === 0) {
      const data = toData(doc, problems);
      if (problems.length === 0) {
        const v = validate();
        if (!v(data)) problems.push(...schemaProblems(v.errors ?? [], doc));
        else return normalise(data as RawManifest, file);
      }
    }
  } catch (e) {
    if (e instanceof KbundleError) throw e;
    // The parser, toJS and ajv all recurse; nesting thousands deep overflows the stack.
    if (!(e instanceof RangeError)) throw e;
    problems.push({ offset: 0, message: `cannot be read: ${e.message} (nested too deeply?)` });
  }
  const fmt = (p: Problem) => {
    if (p.offset < 0) return `${file}: ${p.message}`;
    const { line, col } = lc.linePos(p.offset);
    return `${file}:${line}:${col}: ${p.message}`;
  };
  const placed = problems.filter((p) => p.offset >= 0).sort((a, b) => a.offset - b.offset);
  const lines = [...new Set(placed.map(fmt))];
  const shown = lines.slice(0, MANIFEST_LIMITS.problems);
  if (lines.length > shown.length) shown.push(`${file}: ... and ${lines.length - shown.length} more problems`);
  shown.push(...problems.filter((p) => p.offset < 0).map(fmt));
  throw new KbundleError(shown.join('\n'), ExitCode.BadManifest);
}

/** Duplicate keys (yaml's wording and position) and keys that are not scalars, in one pass. */
function keyProblems(doc: Document): Problem[] {
  const out: Problem[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key = pair.key;
        // A tagged scalar (!!binary, a 1.1 timestamp) holds an object, which toJS would stringify.
        if (!isScalar(key) || (typeof key.value === 'object' && key.value !== null)) {
          // toJS would stringify it (and print a process warning); no manifest key is a collection.
          out.push({ offset: isNode(key) ? (key.range?.[0] ?? 0) : (map.range?.[0] ?? 0), message: 'a mapping key must be a plain string' });
          continue;
        }
        if (seen.has(key.value)) out.push({ offset: key.range?.[0] ?? 0, message: 'Map keys must be unique' });
        seen.add(key.value);
      }
    },
  });
  return out;
}

/** doc.toJS, with yaml's alias errors (thrown as ReferenceError) turned into positioned problems. */
function toData(doc: Document, problems: Problem[]): unknown {
  try {
    return doc.toJS({ maxAliasCount: MANIFEST_LIMITS.aliases });
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    const aliases: { source: string; offset: number; resolved: boolean }[] = [];
    visit(doc, {
      Alias(_, a) {
        aliases.push({ source: a.source, offset: a.range?.[0] ?? 0, resolved: a.resolve(doc) !== undefined });
      },
    });
    const unresolved = aliases.find((a) => !a.resolved);
    if (/Unresolved alias/.test(e.message) && unresolved) {
      problems.push({ offset: unresolved.offset, message: `alias *${unresolved.source} has no anchor &${unresolved.source} before it` });
    } else if (/Excessive alias count/.test(e.message)) {
      problems.push({
        offset: aliases[0]?.offset ?? 0,
        message: `aliases expand to more than ${MANIFEST_LIMITS.aliases} copies (a YAML alias bomb?); refused`,
      });
    } else {
      problems.push({ offset: aliases[0]?.offset ?? 0, message: e.message });
    }
    return undefined;
  }
}

function yamlMessage(m: string): string {
  // yaml appends its own " at line L, column C"; we print the position first.
  return m.replace(/ at line \d+, column \d+:?[\s\S]*$/, '').trim();
}

function schemaProblems(errors: ErrorObject[], doc: Document): Problem[] {
  // oneOf/anyOf failures come with one error per branch; show only the
  // oneOf itself, phrased with the schema's description.
  const alternatives = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
  // Branch errors reached through $ref carry the $defs schema path, so below
  // a non-root oneOf everything at or under its instance path is dropped.
  // Sets, not a scan of every alternative per error: a list of 20,000 bad
  // kernels gives 60,000 errors and 20,000 alternatives.
  const altSchemaPaths = [...new Set(alternatives.map((a) => `${a.schemaPath}/`))];
  const altInstancePaths = new Set(alternatives.filter((a) => a.instancePath !== '').map((a) => a.instancePath));
  const underAlternative = (e: ErrorObject) => {
    if (altSchemaPaths.some((p) => e.schemaPath.startsWith(p))) return true;
    for (let p = e.instancePath; p !== ''; p = p.slice(0, p.lastIndexOf('/'))) if (altInstancePaths.has(p)) return true;
    return false;
  };
  const all = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf' || !underAlternative(e));
  // Positions cost a walk of the document each; the rest are only counted.
  const kept = all.slice(0, MANIFEST_LIMITS.problems);
  const more: Problem[] = all.length > kept.length ? [{ offset: -1, message: `... and ${all.length - kept.length} more schema problems` }] : [];
  return kept.map((e) => {
    const path = pointer(e.instancePath);
    const where = e.instancePath === '' ? 'top level' : e.instancePath.slice(1).replace(/\//g, '.');
    let node = nodeAt(doc, path);
    let message: string;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        const allowed = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {}).join(', ');
        if (isMap(node)) {
          const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
          if (pair && isNode(pair.key)) node = pair.key;
        }
        message = `unknown key "${key}" in ${where}; expected one of: ${allowed}`;
        break;
      }
      case 'required':
        message = `${where} is missing required key "${(e.params as { missingProperty: string }).missingProperty}"`;
        break;
      case 'enum':
        message = `${where} must be one of: ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      case 'const':
        message = `${where} must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
        break;
      case 'type':
        message = `${where} must be ${(e.params as { type: string | string[] }).type.toString().replace(/,/g, ' or ')}, got ${describe(e.data)}`;
        break;
      case 'oneOf':
      case 'anyOf': {
        const desc = (e.parentSchema as { description?: string })?.description;
        message = e.instancePath === '' ? 'exactly one of "source" or "sources" is required' : `${where} must be ${desc ?? 'one of the allowed forms'}`;
        break;
      }
      default:
        message = `${where} ${e.message ?? 'is invalid'}`;
    }
    return { offset: node?.range?.[0] ?? 0, message };
  }).concat(more);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  // String(): JSON.stringify says null for .inf and .nan.
  const text = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return `${typeof v} ${text.length > 80 ? `${text.slice(0, 80)}...` : text}`;
}

function pointer(p: string): (string | number)[] {
  if (p === '') return [];
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function nodeAt(doc: Document, path: (string | number)[]): Node | null {
  // Walk up until a node exists (a missing key reports at its parent).
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node)) return node;
  }
  return null;
}

function normalise(raw: RawManifest, file: string): Manifest {
  const base = dirname(file);
  const abs = (p: string) => resolve(base, p);
  const m: Manifest = {
    file,
    apiVersion: raw.apiVersion,
    sources: (raw.sources ?? [raw.source!]).map(abs),
    kernels: raw.kernels.map((k) => (typeof k === 'string' ? { pattern: k } : { pattern: k.release, ...(k.headers ? { headers: abs(k.headers) } : {}) })),
    arches: raw.arches ?? ['x86_64'],
    compression: { level: raw.compression?.level ?? 19 },
    metadata: Object.fromEntries(Object.entries(raw.metadata ?? {}).map(([k, v]) => [k, String(v)])),
  };
  if (raw.name !== undefined) m.name = raw.name;
  if (raw.version !== undefined) m.version = raw.version;
  if (raw.signing) m.signing = { moduleKey: abs(raw.signing.moduleKey), moduleCert: abs(raw.signing.moduleCert), hash: raw.signing.hash ?? 'sha256' };
  if (raw.bundleKey !== undefined) m.bundleKey = abs(raw.bundleKey);
  if (raw.sourceDateEpoch !== undefined) m.sourceDateEpoch = raw.sourceDateEpoch;
  if (raw.output !== undefined) m.output = abs(raw.output);
  for (const k of m.kernels) {
    if (k.headers && /[*?[]/.test(k.pattern)) {
      throw new KbundleError(`${file}: kernel "${k.pattern}" is a pattern; "headers" needs an explicit release`, ExitCode.BadManifest);
    }
  }
  return m;
}

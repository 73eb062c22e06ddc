import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { LineCounter, isMap, isNode, isScalar, parseDocument, type Document, type Node } from 'yaml';
import { KbundleError } from '../util/errors.js';
import { BundleExit } from '../bundle/exit-codes.js';
import type { Manifest, RawManifest } from './types.js';

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
  offset: number;
  message: string;
}

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
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new KbundleError(`cannot read manifest ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, BundleExit.BadManifest);
  }
  return parseManifest(text, file);
}

export function parseManifest(text: string, file: string): Manifest {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true });
  const problems: Problem[] = [...doc.errors, ...doc.warnings].map((e) => ({ offset: e.pos[0], message: yamlMessage(e.message) }));
  if (problems.length === 0) {
    const data = doc.toJS({ maxAliasCount: 100 }) as unknown;
    const v = validate();
    if (!v(data)) problems.push(...schemaProblems(v.errors ?? [], doc));
    else return normalise(data as RawManifest, file);
  }
  const fmt = (p: Problem) => {
    const { line, col } = lc.linePos(p.offset);
    return `${file}:${line}:${col}: ${p.message}`;
  };
  const lines = [...new Map(problems.sort((a, b) => a.offset - b.offset).map((p) => [fmt(p), p])).keys()];
  throw new KbundleError(lines.join('\n'), BundleExit.BadManifest);
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
  const underAlternative = (e: ErrorObject, a: ErrorObject) =>
    e.schemaPath.startsWith(a.schemaPath + '/') || (a.instancePath !== '' && (e.instancePath === a.instancePath || e.instancePath.startsWith(a.instancePath + '/')));
  const kept = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf' || !alternatives.some((a) => underAlternative(e, a)));
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
  });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
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
      throw new KbundleError(`${file}: kernel "${k.pattern}" is a pattern; "headers" needs an explicit release`, BundleExit.BadManifest);
    }
  }
  return m;
}

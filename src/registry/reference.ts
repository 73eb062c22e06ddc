/**
 * `REF` of push/pull: `HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]`, the
 * grammar of the distribution spec ("Pulling manifests": `<name>` and
 * `<reference>`), with Docker's rule for telling a host from a first path
 * component (a dot, a colon, or `localhost`). A host is required: kbundle
 * never guesses a registry. `docker.io` is served at registry-1.docker.io.
 */
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

export interface Reference {
  /** Host as written (with port), e.g. `127.0.0.1:5000`. */
  registry: string;
  /** Host the HTTP requests go to (docker.io → registry-1.docker.io). */
  endpoint: string;
  /** Repository name, e.g. `kbundle/hello`. */
  repository: string;
  tag?: string;
  digest?: string;
}

// distribution-spec "Pulling manifests": name and tag regular expressions.
const NAME_RE = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const HOST_RE = /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?)(:[0-9]{1,5})?$/;

/** Parses REF or returns why it does not parse. */
export function parseReference(ref: string): Reference | string {
  let rest = ref.trim();
  if (!rest) return 'empty reference';
  if (/^[a-z]+:\/\//i.test(rest)) return `"${ref}": give HOST/REPOSITORY[:TAG], without a URL scheme (use --plain-http for http)`;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) return `"${ref}": digest "${digest}" is not sha256:<64 lowercase hex>`;
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  if (slash < 0 || !(first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    return `"${ref}": name the registry host first, e.g. registry.example.com/${rest} or 127.0.0.1:5000/${rest}`;
  }
  if (!HOST_RE.test(first)) return `"${ref}": "${first}" is not a host[:port]`;
  let repo = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = repo.lastIndexOf(':');
  if (colon >= 0) {
    tag = repo.slice(colon + 1);
    repo = repo.slice(0, colon);
    if (!TAG_RE.test(tag)) return `"${ref}": tag "${tag}" is not valid (letters, digits, _ . -; at most 128; not starting with . or -)`;
  }
  if (!NAME_RE.test(repo)) return `"${ref}": repository "${repo}" is not valid (lowercase path components separated by /)`;
  if (first === 'docker.io' && !repo.includes('/')) repo = `library/${repo}`;
  const endpoint = first === 'docker.io' ? 'registry-1.docker.io' : first;
  return { registry: first, endpoint, repository: repo, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export function mustParseReference(ref: string): Reference {
  const r = parseReference(ref);
  if (typeof r === 'string') throw new KbundleError(r, ExitCode.RegistryBadReference);
  return r;
}

/** Whether a host is the loopback interface (where --plain-http is expected). */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export function formatReference(r: Reference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

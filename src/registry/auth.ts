/**
 * Registry authentication: answers a 401 challenge with the credentials the
 * user gave. Basic: the credentials go in every request. Bearer (the token
 * flow of distribution's docs/spec/auth/token.md, used by Harbor, Docker
 * Hub, GitLab, Zot with a token server): GET realm?service=&scope= with the
 * credentials as Basic auth (none: an anonymous token), then the token from
 * the JSON answer (`token`, else `access_token`) as `Bearer`.
 */
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { header, readBody, send } from './http.js';
import { parseChallenges, type Challenge } from './www-authenticate.js';

export interface Credentials {
  username: string;
  password: string;
}

/** Where the credentials came from, for messages (never the secret itself). */
export interface CredentialSource {
  credentials: Credentials | null;
  origin: string;
}

export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

/** The Authorization header that answers `challenges`, fetching a token when the registry asks for one. */
export async function answerChallenge(
  challenges: Challenge[],
  creds: CredentialSource,
  scope: string,
  registry: string,
): Promise<{ authorization: string; scheme: 'basic' | 'bearer' }> {
  const bearer = challenges.find((c) => c.scheme === 'bearer');
  const basic = challenges.find((c) => c.scheme === 'basic');
  if (bearer) return { authorization: `Bearer ${await fetchToken(bearer, creds, scope, registry)}`, scheme: 'bearer' };
  if (basic) {
    if (!creds.credentials) throw needCredentials(registry);
    return { authorization: basicHeader(creds.credentials), scheme: 'basic' };
  }
  const offered = challenges.map((c) => c.scheme).join(', ') || 'none';
  throw new KbundleError(`${registry} asks for authentication kbundle does not speak (WWW-Authenticate schemes: ${offered}; supported: Basic, Bearer)`, ExitCode.RegistryAuthFailed);
}

export function needCredentials(registry: string): KbundleError {
  return new KbundleError(
    `${registry} requires credentials: pass -u USER --password-stdin, or set KBUNDLE_REGISTRY_USERNAME and KBUNDLE_REGISTRY_PASSWORD`,
    ExitCode.RegistryAuthFailed,
  );
}

async function fetchToken(ch: Challenge, creds: CredentialSource, scope: string, registry: string): Promise<string> {
  const realm = ch.params.realm;
  if (!realm) throw new KbundleError(`${registry}: Bearer challenge without a realm`, ExitCode.RegistryProtocol);
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new KbundleError(`${registry}: Bearer realm "${realm}" is not a URL`, ExitCode.RegistryProtocol);
  }
  if (ch.params.service) url.searchParams.set('service', ch.params.service);
  // The registry's own scope names what this request needs; ours adds push rights up front, so one token serves the whole push.
  for (const s of new Set([scope, ...(ch.params.scope ? [ch.params.scope] : [])])) url.searchParams.append('scope', s);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (creds.credentials) headers.Authorization = basicHeader(creds.credentials);
  const res = await send({ method: 'GET', url, headers });
  const body = await readBody(res, 1 << 20);
  if (res.status === 401 || res.status === 403) {
    throw new KbundleError(
      creds.credentials
        ? `authentication failed at ${url.origin}${url.pathname} (token server for ${registry}) for user "${creds.credentials.username}" (from ${creds.origin}): ${res.status} ${errorText(body)}`.trim()
        : `${registry} requires credentials (its token server refused an anonymous token): pass -u USER --password-stdin, or set KBUNDLE_REGISTRY_USERNAME and KBUNDLE_REGISTRY_PASSWORD`,
      ExitCode.RegistryAuthFailed,
    );
  }
  if (res.status !== 200) throw new KbundleError(`token server ${url.origin}${url.pathname} answered ${res.status} ${errorText(body)}`.trim(), ExitCode.RegistryProtocol);
  let token: unknown;
  try {
    const j = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown };
    token = j.token ?? j.access_token;
  } catch {
    token = undefined;
  }
  if (typeof token !== 'string' || !token) throw new KbundleError(`token server ${url.origin}${url.pathname} gave no token (${header(res.headers, 'content-type') ?? 'no content type'})`, ExitCode.RegistryProtocol);
  return token;
}

/** The registry's error text: distribution-spec error JSON (`errors[].code/message`), else the first line of the body. */
export function errorText(body: Buffer): string {
  const text = body.toString('utf8').trim();
  try {
    const j = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[]; error?: string; details?: string };
    if (Array.isArray(j.errors) && j.errors.length) return j.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    if (j.error) return j.error + (j.details ? `: ${j.details}` : '');
  } catch {
    // not JSON
  }
  return text.split('\n')[0]!.slice(0, 200);
}

export { parseChallenges };

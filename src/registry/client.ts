/**
 * A registry's /v2/ API for one repository (distribution-spec spec.md,
 * "Pull", "Push", "Content Discovery"): every request goes through `call`,
 * which authenticates on a 401 challenge and sends the request again, and
 * maps failures to exit codes (401 → 90, 403 → 96, 404 → 91, anything else
 * unexpected → 92).
 */
import type { IncomingMessage } from 'node:http';
import { KbundleError } from '../util/errors.js';
import { answerChallenge, errorText, needCredentials, type CredentialSource } from './auth.js';
import { ExitCode } from '../util/exit-codes.js';
import { header, readBody, send, type Body, type BufferedResponse, type HttpRequest, type HttpResponse } from './http.js';
import type { Reference } from './reference.js';
import { parseChallenges } from './www-authenticate.js';

export interface ClientOptions {
  plainHttp: boolean;
  credentials: CredentialSource;
  /** Token scope actions: pull, or pull,push. */
  actions: 'pull' | 'pull,push';
}

/** Bytes actually sent in request bodies, for `--json` (what a push really uploaded). */
export interface Traffic {
  requests: number;
  bodyBytes: number;
}

const MAX_JSON = 4 << 20;

export class RegistryClient {
  readonly base: URL;
  private authorization: string | null = null;
  private scheme: 'basic' | 'bearer' | null = null;
  readonly traffic: Traffic = { requests: 0, bodyBytes: 0 };

  constructor(
    readonly ref: Reference,
    private readonly opts: ClientOptions,
  ) {
    this.base = new URL(`${opts.plainHttp ? 'http' : 'https'}://${ref.endpoint}/v2/`);
  }

  /** `/v2/<name>/<rest>` as a URL. */
  url(rest: string): URL {
    return new URL(`${this.ref.repository}/${rest}`, this.base);
  }

  get scope(): string {
    return `repository:${this.ref.repository}:${this.opts.actions}`;
  }

  /** Sends a request, authenticating once when challenged; the body is unread. */
  async call(req: HttpRequest): Promise<HttpResponse & { stream: IncomingMessage }> {
    for (let attempt = 0; ; attempt++) {
      const headers = { ...req.headers };
      // Credentials only to the registry itself, never to a redirect target (blob storage).
      if (this.authorization && req.url.host === this.base.host) headers.Authorization = this.authorization;
      this.traffic.requests++;
      const res = await send({ ...req, headers });
      if (req.body) this.traffic.bodyBytes += req.body.length;
      if (res.status !== 401 || req.url.host !== this.base.host) return res;
      const body = await readBody(res, MAX_JSON);
      const challenges = parseChallenges(res.headers['www-authenticate']);
      if (attempt > 0 || (this.authorization && this.scheme === 'basic')) {
        throw this.authError(body, challenges.find((c) => c.scheme === 'bearer')?.params.error);
      }
      const a = await answerChallenge(challenges, this.opts.credentials, this.scope, this.ref.registry);
      this.authorization = a.authorization;
      this.scheme = a.scheme;
    }
  }

  private authError(body: Buffer, bearerError: string | undefined): KbundleError {
    const c = this.opts.credentials;
    if (!c.credentials) return needCredentials(this.ref.registry);
    if (this.scheme === 'bearer' && bearerError === 'insufficient_scope') {
      return new KbundleError(`${this.ref.registry}: user "${c.credentials.username}" may not ${this.opts.actions.replace(',', '/')} ${this.ref.repository} (${errorText(body)})`, ExitCode.RegistryDenied);
    }
    return new KbundleError(
      `authentication failed at ${this.ref.registry} for user "${c.credentials.username}" (from ${c.origin}): wrong username or password? (${errorText(body) || '401 Unauthorized'})`,
      ExitCode.RegistryAuthFailed,
    );
  }

  /** A request whose body is read whole; `ok` lists the statuses that are not failures. */
  async json(req: HttpRequest, ok: number[], what: string): Promise<BufferedResponse> {
    const res = await this.call(req);
    // Read to the end even for HEAD: a response not consumed keeps its keep-alive socket, and the agent runs out of them.
    const body = await readBody(res, MAX_JSON);
    if (!ok.includes(res.status)) throw this.failure(res, body, what);
    return { ...res, body };
  }

  failure(res: HttpResponse, body: Buffer, what: string): KbundleError {
    const text = errorText(body);
    const msg = `${what}: ${this.ref.registry} answered ${res.status}${text ? ` (${text})` : ''}`;
    if (res.status === 401) return new KbundleError(msg, ExitCode.RegistryAuthFailed);
    if (res.status === 403) return new KbundleError(msg, ExitCode.RegistryDenied);
    if (res.status === 404) return new KbundleError(msg, ExitCode.RegistryNotFound);
    return new KbundleError(msg, ExitCode.RegistryProtocol);
  }

  /** `GET /v2/`: the registry speaks the API and the credentials work (the auth failure surfaces here, before any upload). */
  async ping(): Promise<void> {
    // /v2/ itself is outside the repository scope; a Bearer registry challenges it with no scope, and our scope is added.
    await this.json({ method: 'GET', url: this.base }, [200], `GET ${this.base.href}`);
  }

  /** HEAD of a blob or manifest by digest: its size when the registry has it, null when not. */
  async exists(kind: 'blobs' | 'manifests', digest: string, accept?: string): Promise<number | null> {
    const url = this.url(`${kind}/${digest}`);
    const res = await this.json({ method: 'HEAD', url, headers: accept ? { Accept: accept } : {} }, [200, 404], `HEAD ${url.pathname}`);
    if (res.status === 404) return null;
    const len = Number(header(res.headers, 'content-length'));
    return Number.isFinite(len) ? len : -1;
  }

  /** Resolves a Location header (absolute or relative) against the registry. */
  location(res: HttpResponse, what: string): URL {
    const loc = header(res.headers, 'location');
    if (!loc) throw new KbundleError(`${what}: ${this.ref.registry} answered ${res.status} without a Location header`, ExitCode.RegistryProtocol);
    return new URL(loc, this.base);
  }

  async put(url: URL, body: Body, contentType: string, ok: number[], what: string): Promise<BufferedResponse> {
    return this.json({ method: 'PUT', url, headers: { 'Content-Type': contentType }, body }, ok, what);
  }
}

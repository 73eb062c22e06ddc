/**
 * One HTTP exchange with a registry, on node:http / node:https (no
 * dependency). Bodies are a Buffer or a factory of streams (a factory, so a
 * request answered 401 can be sent again after authenticating). Transport
 * failures become exit 94 with the system's reason; statuses are the
 * caller's to judge.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

export type Body = Buffer | { length: number; open: () => Readable };

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  body?: Body;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  url: URL;
}

/** A response whose body is read whole (capped: a registry's JSON answers are small). */
export interface BufferedResponse extends HttpResponse {
  body: Buffer;
}

const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 8 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 8 }),
};

/** No byte for this long (connect, send or receive) fails the request. */
const IDLE_TIMEOUT_MS = Number(process.env.KBUNDLE_REGISTRY_TIMEOUT_MS ?? 60_000);

function networkError(req: HttpRequest, e: Error & { code?: string }): KbundleError {
  const host = req.url.host;
  const why =
    e.code === 'ECONNREFUSED'
      ? `connection refused by ${host}`
      : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN'
        ? `cannot resolve ${req.url.hostname}`
        : e.code === 'EPROTO' || /SSL|TLS|certificate/i.test(e.message)
          ? `TLS with ${host} failed (${e.message}); a plain-HTTP registry needs --plain-http, a private CA NODE_EXTRA_CA_CERTS=ca.pem`
          : `${e.code ? `${e.code}: ` : ''}${e.message}`;
  return new KbundleError(`${req.method} ${req.url.href}: ${why}`, ExitCode.RegistryNetwork);
}

/** Sends a request and hands back the response with its body unread (the caller must consume or destroy it). */
export function send(req: HttpRequest): Promise<HttpResponse & { stream: IncomingMessage }> {
  return new Promise((resolvePromise, reject) => {
    const mod = req.url.protocol === 'https:' ? https : http;
    const agent = agents[req.url.protocol as 'http:' | 'https:'];
    if (!agent) return reject(new KbundleError(`unsupported URL ${req.url.href}`, ExitCode.RegistryProtocol));
    const headers: Record<string, string> = { 'User-Agent': 'kbundle', ...req.headers };
    const body = req.body;
    if (body !== undefined) headers['Content-Length'] = String(body.length);
    else if (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH') headers['Content-Length'] = '0';
    const r = mod.request(req.url, { method: req.method, headers, agent }, (res) => {
      resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, url: req.url, stream: res });
    });
    r.setTimeout(IDLE_TIMEOUT_MS, () => r.destroy(Object.assign(new Error(`no answer for ${IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })));
    r.on('error', (e) => reject(networkError(req, e)));
    if (body === undefined) r.end();
    else if (Buffer.isBuffer(body)) r.end(body);
    else {
      const s = body.open();
      s.on('error', (e) => r.destroy(e));
      s.pipe(r);
    }
  });
}

/** Reads a response body whole, refusing more than `max` bytes. */
export async function readBody(res: HttpResponse & { stream: IncomingMessage }, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.stream as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > max) {
        res.stream.destroy();
        throw new KbundleError(`${res.url.href}: answer larger than ${max} bytes`, ExitCode.RegistryProtocol);
      }
      parts.push(c);
    }
  } catch (e) {
    if (e instanceof KbundleError) throw e;
    throw new KbundleError(`${res.url.href}: connection lost while reading the answer (${(e as Error).message})`, ExitCode.RegistryNetwork);
  }
  return Buffer.concat(parts);
}

export function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

// A real CNCF distribution registry (Debian's docker-registry) on a free
// loopback port, with htpasswd or token auth, and a tiny token server that
// issues ES256 JWTs the registry's `auth.token` config accepts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, REPO } from '../helpers/scratch.js';

export const CONFIG = join(REPO, 'test/registry/registry-config.yml');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Registry {
  /** host:port to put in REFs */
  host: string;
  root: string;
  log: () => string;
  stop: () => Promise<void>;
}

export type RegistryAuth = { kind: 'htpasswd'; users: Record<string, string> } | { kind: 'token'; realm: string; service: string; issuer: string; certFile: string };

async function waitReady(host: string, child: ChildProcess, logFile: string, tls: boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${readFileSync(logFile, 'utf8')}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = (tls ? https : http).get(`${tls ? 'https' : 'http'}://${host}/v2/`, { rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not answer on ${host}: ${readFileSync(logFile, 'utf8')}`);
}

/** Starts `docker-registry serve test/registry/registry-config.yml` with per-instance overrides. */
export async function startRegistry(auth: RegistryAuth | null, tls?: { cert: string; key: string }): Promise<Registry> {
  const dir = mkdtempSync(join(tmpdir(), 'kbundle-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env, REGISTRY_HTTP_ADDR: host, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(dir, 'storage') };
  if (auth?.kind === 'htpasswd') {
    const lines = Object.entries(auth.users).map(([u, p]) => {
      const r = spawnSync('htpasswd', ['-Bbn', u, p], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`htpasswd: ${r.stderr}`);
      return r.stdout.trim();
    });
    writeFileSync(join(dir, 'htpasswd'), `${lines.join('\n')}\n`);
    Object.assign(env, { REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_REALM: 'kbundle-test', REGISTRY_AUTH_HTPASSWD_PATH: join(dir, 'htpasswd') });
  } else if (auth?.kind === 'token') {
    Object.assign(env, {
      REGISTRY_AUTH: 'token',
      REGISTRY_AUTH_TOKEN_REALM: auth.realm,
      REGISTRY_AUTH_TOKEN_SERVICE: auth.service,
      REGISTRY_AUTH_TOKEN_ISSUER: auth.issuer,
      REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE: auth.certFile,
    });
  }
  if (tls) Object.assign(env, { REGISTRY_HTTP_TLS_CERTIFICATE: tls.cert, REGISTRY_HTTP_TLS_KEY: tls.key });
  const logFile = join(dir, 'registry.log');
  const out = (await import('node:fs')).openSync(logFile, 'a');
  const child = spawn('docker-registry', ['serve', CONFIG], { env, stdio: ['ignore', out, out] });
  await waitReady(host, child, logFile, Boolean(tls));
  return {
    host,
    root: join(dir, 'storage'),
    log: () => readFileSync(logFile, 'utf8'),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** A self-signed certificate for 127.0.0.1 (subjectAltName IP), for a TLS registry. */
export function selfSignedCert(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kbundle-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  return { cert, key };
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Scopes asked for, per request, for assertions. */
  requests: { user: string | null; scopes: string[] }[];
  stop: () => Promise<void>;
}

/**
 * The token endpoint of distribution's docs/spec/auth/token.md: Basic
 * credentials in, `{"token": JWT}` out. The JWT is ES256-signed, its header
 * carries the signing certificate in `x5c`, which the registry checks
 * against REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE (the same self-signed cert).
 * `grants` gives each user the actions they may have (intersected with
 * what they ask for).
 */
export async function startTokenServer(users: Record<string, { password: string; grants: string[] }>): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'kbundle-token-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=kbundle-test-token'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  const key = createPrivateKey(readFileSync(keyFile));
  const certDer = new X509Certificate(readFileSync(certFile)).raw;
  const service = 'kbundle-test-registry';
  const issuer = 'kbundle-test-issuer';
  const requests: TokenServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization ?? '';
    const [user, pass] = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8').split(/:(.*)/s) : [null, null];
    const scopes = url.searchParams.getAll('scope');
    requests.push({ user: user ?? null, scopes });
    const u = user ? users[user] : undefined;
    if (!u || u.password !== pass) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const access = scopes.flatMap((s) => {
      const m = /^repository:([^:]+):(.+)$/.exec(s);
      if (!m) return [];
      const actions = m[2]!.split(',').filter((a) => u.grants.includes(a));
      return [{ type: 'repository', name: m[1]!, actions }];
    });
    const now = Math.floor(Date.now() / 1000);
    const headerJ = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] };
    const claims = { iss: issuer, sub: user, aud: url.searchParams.get('service') ?? service, exp: now + 600, nbf: now - 60, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signingInput = `${b64url(JSON.stringify(headerJ))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
    const token = `${signingInput}.${b64url(sig)}`;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 600, issued_at: new Date(now * 1000).toISOString() }));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { realm: `http://127.0.0.1:${port}/token`, service, issuer, certFile, requests, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI without blocking this process (the token server lives in
 * it, so spawnSync would deadlock); `input` goes to stdin.
 */
export function kb(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    for (const k of ['KBUNDLE_REGISTRY_USERNAME', 'KBUNDLE_REGISTRY_PASSWORD']) if (!opts.env || !(k in opts.env)) delete env[k];
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.end(opts.input ?? '');
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export function sha256File(f: string): string {
  return createHash('sha256').update(readFileSync(f)).digest('hex');
}

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

/**
 * minisign-compatible Ed25519 signatures (jedisct1/minisign src/minisign.h):
 *   public key  = base64("Ed" ‖ keynum[8] ‖ pk[32])
 *   signature   = "untrusted comment: …" / base64(alg[2] ‖ keynum[8] ‖ sig[64])
 *                 / "trusted comment: …" / base64(global_sig[64])
 * alg "ED" signs BLAKE2b-512(message) (minisign ≥ 0.11 default), "Ed" the
 * raw message; global_sig signs sig ‖ trusted comment, which is what makes
 * the trusted comment trustworthy. Secret keys are kept as PKCS#8 PEM (what
 * node:crypto reads natively); the key number is derived from the public
 * key so the PEM alone is enough to sign.
 */

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const UNTRUSTED = 'untrusted comment: ';
const TRUSTED = 'trusted comment: ';

export interface PublicKey {
  /** minisign key number, 8 bytes. */
  keyNum: Buffer;
  /** Displayed form: minisign prints the key number as a little-endian u64 in upper-case hex, unpadded. */
  keyId: string;
  raw: Buffer;
  key: KeyObject;
}

export interface SecretKey {
  privateKey: KeyObject;
  publicKey: PublicKey;
}

export interface GeneratedKeys {
  /** PKCS#8 PEM; keep it private. */
  secretKeyPem: string;
  /** minisign public key file contents (`minisign -V -p` accepts it). */
  publicKeyText: string;
  keyId: string;
}

export function generateKeys(): GeneratedKeys {
  const { privateKey } = generateKeyPairSync('ed25519');
  const sk = secretKeyFromObject(privateKey);
  return {
    secretKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyText: formatPublicKey(sk.publicKey),
    keyId: sk.publicKey.keyId,
  };
}

export function parseSecretKey(pem: string, source = 'secret key'): SecretKey {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    throw new KbundleError(`${source}: not a PKCS#8 PEM private key (${(e as Error).message})`, ExitCode.BadKey);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new KbundleError(`${source}: key type is ${key.asymmetricKeyType}, bundle signing needs ed25519`, ExitCode.BadKey);
  }
  return secretKeyFromObject(key);
}

export async function loadSecretKey(path: string): Promise<SecretKey> {
  return parseSecretKey(await readKeyFile(path), path);
}

function secretKeyFromObject(privateKey: KeyObject): SecretKey {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const raw = spki.subarray(SPKI_ED25519_PREFIX.length);
  return { privateKey, publicKey: publicKeyFromRaw(raw, deriveKeyNum(raw)) };
}

/** Key number = first 8 bytes of SHA-256(pk): stable for a key, so no extra file is needed. */
function deriveKeyNum(raw: Buffer): Buffer {
  return createHash('sha256').update(raw).digest().subarray(0, 8);
}

function publicKeyFromRaw(raw: Buffer, keyNum: Buffer): PublicKey {
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
  return { keyNum: Buffer.from(keyNum), keyId: keyIdString(keyNum), raw: Buffer.from(raw), key };
}

/** As minisign prints it: `%" PRIX64` of the little-endian key number, so no zero padding. */
export function keyIdString(keyNum: Buffer): string {
  return Buffer.from(keyNum).readBigUInt64LE().toString(16).toUpperCase();
}

export function formatPublicKey(pk: PublicKey): string {
  const b64 = Buffer.concat([Buffer.from('Ed'), pk.keyNum, pk.raw]).toString('base64');
  return `${UNTRUSTED}minisign public key ${pk.keyId}\n${b64}\n`;
}

/** Accepts a minisign public key file or the bare `RWQ…` base64 line. */
export function parsePublicKey(text: string, source = 'public key'): PublicKey {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const b64 = lines.find((l) => !l.startsWith(UNTRUSTED))?.trim() ?? '';
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length !== 42 || bytes.subarray(0, 2).toString('latin1') !== 'Ed' || bytes.toString('base64') !== b64) {
    throw new KbundleError(`${source}: not a minisign Ed25519 public key (expected base64 of 42 bytes starting "Ed")`, ExitCode.BadKey);
  }
  return publicKeyFromRaw(bytes.subarray(10, 42), bytes.subarray(2, 10));
}

export async function loadPublicKey(path: string): Promise<PublicKey> {
  return parsePublicKey(await readKeyFile(path), path);
}

async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new KbundleError(`cannot read key file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ExitCode.BadKey);
  }
}

export interface SignOptions {
  untrustedComment?: string;
  /** Sign BLAKE2b-512(message) ("ED", default) or the raw message ("Ed", minisign -l). */
  prehash?: boolean;
}

/** Ed25519 is deterministic, so the same key, message and comments always give the same file. */
export function signMinisign(message: Uint8Array, sk: SecretKey, trustedComment: string, opts: SignOptions = {}): string {
  checkComment(trustedComment, 'trusted comment');
  const untrusted = opts.untrustedComment ?? kbundleUntrustedComment(sk.publicKey.keyId);
  checkComment(untrusted, 'untrusted comment');
  const prehash = opts.prehash ?? true;
  const signed = prehash ? blake2b(message) : message;
  const sig = sign(null, signed, sk.privateKey);
  const globalSig = sign(null, Buffer.concat([sig, Buffer.from(trustedComment, 'utf8')]), sk.privateKey);
  return formatMinisign({ alg: prehash ? 'ED' : 'Ed', keyNum: sk.publicKey.keyNum, sig, globalSig, trustedComment }, untrusted);
}

function kbundleUntrustedComment(keyId: string): string {
  return `signature from kbundle secret key ${keyId}`;
}

function formatMinisign(p: ParsedSignature, untrustedComment: string): string {
  const line2 = Buffer.concat([Buffer.from(p.alg, 'latin1'), p.keyNum, p.sig]).toString('base64');
  return `${UNTRUSTED}${untrustedComment}\n${line2}\n${TRUSTED}${p.trustedComment}\n${p.globalSig.toString('base64')}\n`;
}

/**
 * The signature file as signMinisign writes it for the same signature:
 * the untrusted comment is covered by no signature, so a bundle carries
 * only kbundle's own, and a reader compares the file with this.
 */
export function kbundleSignatureText(sigText: string): string {
  const p = parseMinisign(sigText);
  return formatMinisign(p, kbundleUntrustedComment(keyIdString(p.keyNum)));
}

export interface VerifiedSignature {
  keyId: string;
  trustedComment: string;
  algorithm: 'ED' | 'Ed';
}

interface ParsedSignature {
  alg: 'ED' | 'Ed';
  keyNum: Buffer;
  sig: Buffer;
  globalSig: Buffer;
  trustedComment: string;
}

function parseMinisign(sigText: string): ParsedSignature {
  const bad = (why: string) => new KbundleError(`bundle signature ${why}`, ExitCode.BadSignature);
  const lines = sigText.split('\n');
  if (lines.length === 5 && lines[4] === '') lines.pop();
  if (lines.length !== 4 || !lines[0].startsWith(UNTRUSTED) || !lines[2].startsWith(TRUSTED)) {
    throw bad('is malformed: expected 4 lines (untrusted comment, signature, trusted comment, global signature)');
  }
  const sigBytes = strictBase64(lines[1]);
  const globalSig = strictBase64(lines[3]);
  if (!sigBytes || sigBytes.length !== 74 || !globalSig || globalSig.length !== 64) throw bad('is malformed: bad signature line length or base64');
  const alg = sigBytes.subarray(0, 2).toString('latin1');
  if (alg !== 'ED' && alg !== 'Ed') throw bad(`uses unsupported algorithm ${JSON.stringify(alg)}`);
  return { alg, keyNum: sigBytes.subarray(2, 10), sig: sigBytes.subarray(10), globalSig, trustedComment: lines[2].slice(TRUSTED.length) };
}

/**
 * Who claims to have signed, WITHOUT checking anything: for listing a bundle
 * whose key the user does not have (`bundle ls` without --key says so).
 */
export function describeMinisign(sigText: string): VerifiedSignature {
  const p = parseMinisign(sigText);
  return { keyId: keyIdString(p.keyNum), trustedComment: p.trustedComment, algorithm: p.alg };
}

/**
 * Checks the signature of `message` against the trusted keys. A key number
 * not among them is "untrusted key" (exit 33), distinct from a signature
 * that is malformed or does not verify (exit 30), because the fixes differ:
 * import the vendor's key vs. get an intact bundle.
 */
export function verifyMinisign(message: Uint8Array, sigText: string, trusted: PublicKey[]): VerifiedSignature {
  const bad = (why: string) => new KbundleError(`bundle signature ${why}`, ExitCode.BadSignature);
  const { alg, keyNum, sig, globalSig, trustedComment } = parseMinisign(sigText);
  const pk = trusted.find((k) => k.keyNum.equals(keyNum));
  if (!pk) {
    const known = trusted.map((k) => k.keyId).join(', ') || 'none';
    throw new KbundleError(`bundle is signed by key ${keyIdString(keyNum)}, which is not trusted (trusted keys: ${known})`, ExitCode.UntrustedKey);
  }
  if (!verify(null, alg === 'ED' ? blake2b(message) : message, pk.key, sig)) throw bad(`does not match the signed content (key ${pk.keyId})`);
  if (!verify(null, Buffer.concat([sig, Buffer.from(trustedComment, 'utf8')]), pk.key, globalSig)) {
    throw bad(`trusted comment has been altered (global signature fails, key ${pk.keyId})`);
  }
  return { keyId: pk.keyId, trustedComment, algorithm: alg };
}

function blake2b(message: Uint8Array): Buffer {
  return createHash('blake2b512').update(message).digest();
}

function strictBase64(s: string): Buffer | null {
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}

function checkComment(c: string, what: string): void {
  if (/[\r\n]/.test(c)) throw new KbundleError(`${what} must be one line`, ExitCode.BadSpec);
  if (Buffer.byteLength(c) > 8192) throw new KbundleError(`${what} is over minisign's 8192-byte limit`, ExitCode.BadSpec);
}

/**
 * Signing keys and certificates as DKMS keeps them: a PEM private key
 * (mok.key) and a DER certificate (mok.pub), both also accepted in the other
 * encoding, and a PEM file holding key and certificate together (the kernel's
 * CONFIG_MODULE_SIG_KEY style).
 */
import { createPrivateKey, createPublicKey, KeyObject, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { writeFileDurable } from '../util/atomic.js';
import { loadExeca } from '../util/execa.js';
import { KbundleError } from '../util/errors.js';
import { readFileOrFail } from '../util/fs.js';
import { OID_COMMON_NAME } from './algorithms.js';

const PEM_CERT = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/;

export interface CertificateInfo {
  /** CN of the issuer: what modinfo prints as `signer`. */
  issuerCN: string | null;
  subjectCN: string | null;
  /** Serial number as colon-separated uppercase hex, as modinfo prints `sig_key`. */
  serialHex: string;
  /** subjectKeyIdentifier in the same notation (what `sign-file -k` uses), if present. */
  subjectKeyIdHex: string | null;
  notBefore: Date;
  notAfter: Date;
  /** node:crypto key type: 'rsa', 'ec', ... */
  keyType: string;
}

/** Colon-separated uppercase hex, the notation modinfo and openssl use for key ids. */
export function colonHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':');
}

function isPem(text: Buffer | string): boolean {
  return (typeof text === 'string' ? text : text.subarray(0, 4096).toString('latin1')).includes('-----BEGIN ');
}

/** Accepts a DER or PEM certificate (PEM may also contain a private key) and returns DER. */
export function certificateDer(cert: Buffer): Buffer {
  if (!isPem(cert)) return cert;
  const m = PEM_CERT.exec(cert.toString('latin1'));
  if (!m) throw new KbundleError('PEM data contains no CERTIFICATE block');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

export async function loadCertificate(path: string): Promise<Buffer> {
  const raw = await readFileOrFail(path, 'certificate');
  const der = certificateDer(raw);
  parseCertificate(der, path);
  return der;
}

export function parseCertificate(der: Buffer, what = 'certificate'): pkijs.Certificate {
  try {
    return pkijs.Certificate.fromBER(new Uint8Array(der));
  } catch (e) {
    throw new KbundleError(`${what} is not an X.509 certificate: ${(e as Error).message}`);
  }
}

function privateKeyFrom(data: Buffer | string, what: string): KeyObject {
  if (isPem(data)) {
    try {
      return createPrivateKey({ key: data, format: 'pem' });
    } catch (e) {
      throw new KbundleError(`cannot load private key ${what}: ${(e as Error).message}`);
    }
  }
  const der = Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1');
  for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      return createPrivateKey({ key: der, format: 'der', type });
    } catch {
      // not this encoding; try the next
    }
  }
  throw new KbundleError(`cannot load private key ${what}: neither PEM nor PKCS#8/PKCS#1/SEC1 DER`);
}

/**
 * A private key from a KeyObject, PEM text, or a path to a PEM/DER file.
 * PKCS#11 URIs are refused: sign-file can use them, kbundle cannot.
 */
export async function loadPrivateKey(key: KeyObject | string): Promise<KeyObject> {
  if (key instanceof KeyObject) {
    if (key.type !== 'private') throw new KbundleError('signing key must be a private key');
    return key;
  }
  if (key.startsWith('pkcs11:')) throw new KbundleError(`PKCS#11 keys are not supported (${key}); use sign-file for hardware keys`);
  if (isPem(key)) return privateKeyFrom(key, '(PEM text)');
  const raw = await readFileOrFail(key, 'signing key');
  return privateKeyFrom(raw, key);
}

export interface KeyPair {
  key: KeyObject;
  certDer: Buffer;
}

/** Loads a key and its certificate, and refuses a pair that does not belong together. */
export async function loadKeyPair(keyPath: string, certPath: string): Promise<KeyPair> {
  const [key, certDer] = await Promise.all([loadPrivateKey(keyPath), loadCertificate(certPath)]);
  assertKeyMatchesCertificate(key, certDer);
  return { key, certDer };
}

/** OpenSSL's CMS_add1_signer() makes the same check, so sign-file fails on a mismatched pair too. */
export function assertKeyMatchesCertificate(key: KeyObject, certDer: Buffer): void {
  const fromKey = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const fromCert = new X509Certificate(certDer).publicKey.export({ format: 'der', type: 'spki' });
  if (!fromKey.equals(fromCert)) throw new KbundleError('the signing key does not match the certificate');
}

function commonName(name: pkijs.RelativeDistinguishedNames): string | null {
  const tv = name.typesAndValues.find((t) => t.type === OID_COMMON_NAME);
  if (!tv) return null;
  const v = tv.value as { valueBlock?: { value?: unknown } };
  return typeof v.valueBlock?.value === 'string' ? v.valueBlock.value : null;
}

/** Magnitude bytes of a DER INTEGER (without the 0x00 sign pad), as OpenSSL's BN_bn2bin gives them. */
export function integerMagnitude(i: asn1js.Integer): Uint8Array {
  const v = i.valueBlock.valueHexView;
  let start = 0;
  while (start < v.length - 1 && v[start] === 0) start++;
  return v.subarray(start);
}

const OID_SUBJECT_KEY_ID = '2.5.29.14';

export function subjectKeyIdentifier(cert: pkijs.Certificate): Uint8Array | null {
  const ext = cert.extensions?.find((e) => e.extnID === OID_SUBJECT_KEY_ID);
  if (!ext) return null;
  const parsed = asn1js.fromBER(ext.extnValue.valueBlock.valueHexView);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.OctetString)) return null;
  return parsed.result.valueBlock.valueHexView;
}

export function certificateInfo(certDer: Buffer): CertificateInfo {
  const der = certificateDer(certDer);
  const cert = parseCertificate(der);
  const skid = subjectKeyIdentifier(cert);
  return {
    issuerCN: commonName(cert.issuer),
    subjectCN: commonName(cert.subject),
    serialHex: colonHex(integerMagnitude(cert.serialNumber)),
    subjectKeyIdHex: skid ? colonHex(skid) : null,
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    keyType: new X509Certificate(der).publicKey.asymmetricKeyType ?? 'unknown',
  };
}

export interface GenerateMokOptions {
  /**
   * Add `extendedKeyUsage=codeSigning` as DKMS 3.1.7+ does. Off by default so
   * the certificate matches the reference DKMS 3.0.10 (Debian 12).
   */
  codeSigningEku?: boolean;
  subject?: string;
}

/** What `openssl req -keyout` gives a private key (OpenSSL 3 opens it 0600); the certificate is public. */
export const MOK_KEY_MODE = 0o600;
export const MOK_CERT_MODE = 0o644;

const PEM_KEY_END = /-----END [A-Z0-9 ]*PRIVATE KEY-----\r?\n/;

/**
 * Creates a MOK key pair with DKMS's own command (/usr/sbin/dkms 3.0.10,
 * prepare_signing: `openssl req -new -x509 -nodes -days 36500 -subj
 * "/CN=DKMS module signing key" -newkey rsa:2048 -keyout KEY -outform DER
 * -out CERT`): RSA-2048, self-signed, 36500 days, PEM key, DER certificate.
 * Both files are (re)written, as DKMS regenerates both when either is
 * missing.
 *
 * openssl writes both to its stdout (the key first: req writes and closes
 * the key output before it makes the certificate), so the private key never
 * lands on disk except through writeFileDurable with its final mode.
 * Publication order: a name that already exists is replaced before a missing
 * one is created, so a crash between the two renames leaves a name missing
 * and the next run regenerates both, instead of leaving a mismatched pair.
 */
export async function generateMok(keyPath: string, certPath: string, opts: GenerateMokOptions = {}): Promise<CertificateInfo> {
  const args = ['req', '-new', '-x509', '-nodes', '-days', '36500', '-subj', opts.subject ?? '/CN=DKMS module signing key', '-newkey', 'rsa:2048'];
  if (opts.codeSigningEku) args.push('-addext', 'extendedKeyUsage=codeSigning');
  args.push('-keyout', '-', '-outform', 'DER', '-out', '-');
  const r = await (await loadExeca())('openssl', args, { reject: false, stdin: 'ignore', encoding: 'buffer', stripFinalNewline: false });
  if (r.exitCode !== 0) {
    const why = Buffer.from(r.stderr ?? []).toString('utf8').trim().split('\n').pop() ?? '';
    throw new KbundleError(`openssl could not generate the signing key ${keyPath}: ${why || (r.failed ? (r.shortMessage ?? 'failed') : `exit ${r.exitCode}`)}`);
  }
  const out = Buffer.from(r.stdout);
  const end = PEM_KEY_END.exec(out.toString('latin1'));
  if (!end) throw new KbundleError(`openssl req printed no private key for ${keyPath}`);
  const keyPem = out.subarray(0, end.index + end[0].length);
  const certDer = out.subarray(end.index + end[0].length);
  parseCertificate(certDer, `the certificate openssl made for ${certPath}`);
  assertKeyMatchesCertificate(privateKeyFrom(keyPem, keyPath), certDer);
  const writes = [
    { path: keyPath, data: keyPem, mode: MOK_KEY_MODE },
    { path: certPath, data: certDer, mode: MOK_CERT_MODE },
  ];
  if (!existsSync(keyPath) && existsSync(certPath)) writes.reverse();
  for (const w of writes) await writeFileDurable(w.path, w.data, { mode: w.mode });
  return certificateInfo(certDer);
}

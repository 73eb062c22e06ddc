/**
 * Offline check of a module's appended signature against a certificate, in
 * pure JS: the same decision `openssl cms -verify -binary -nointern -noverify`
 * makes (openssl-cms(1); docs/signing.md "Checking a signed module"), plus the kernel's own restriction on the
 * RSA signature algorithm.
 */
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { KbundleError } from '../util/errors.js';
import { ECDSA_SIG_OIDS, hashNameForOid, OID_EC_PUBLIC_KEY, OID_MESSAGE_DIGEST, OID_RSA_ENCRYPTION, OID_SIGNED_DATA } from './algorithms.js';
import { splitSignedModule } from './appended-signature.js';
import { certificateDer, colonHex, integerMagnitude, parseCertificate, subjectKeyIdentifier } from './keys.js';

export interface ModuleSignatureCheck {
  valid: boolean;
  /** Issuer CN named by the signature (modinfo `signer`); null if unsigned or not by issuer+serial. */
  signer: string | null;
  /** Issuer serial (or subjectKeyIdentifier) as colon hex (modinfo `sig_key`). */
  keyId: string | null;
  /** Digest name (modinfo `sig_hashalgo`). */
  hashAlgo: string | null;
  /** Why the signature is not valid. */
  reason?: string;
}

interface ParsedSigner {
  signerInfo: pkijs.SignerInfo;
  signer: string | null;
  keyId: string;
  matches: (cert: pkijs.Certificate) => boolean;
}

function parseSignedData(cms: Buffer): pkijs.SignedData {
  let ci: pkijs.ContentInfo;
  try {
    ci = pkijs.ContentInfo.fromBER(new Uint8Array(cms));
  } catch (e) {
    throw new KbundleError(`module signature is not a CMS structure: ${(e as Error).message}`);
  }
  if (ci.contentType !== OID_SIGNED_DATA) throw new KbundleError(`module signature is CMS type ${ci.contentType}, not signedData`);
  return new pkijs.SignedData({ schema: ci.content });
}

function describeSigner(si: pkijs.SignerInfo): ParsedSigner {
  if (si.sid instanceof pkijs.IssuerAndSerialNumber) {
    const sid = si.sid;
    const cn = sid.issuer.typesAndValues.find((t) => t.type === '2.5.4.3')?.value as { valueBlock?: { value?: unknown } } | undefined;
    return {
      signerInfo: si,
      signer: typeof cn?.valueBlock?.value === 'string' ? cn.valueBlock.value : null,
      keyId: colonHex(integerMagnitude(sid.serialNumber)),
      matches: (cert) =>
        Buffer.from(cert.issuer.toSchema().toBER()).equals(Buffer.from(sid.issuer.toSchema().toBER())) &&
        Buffer.from(integerMagnitude(cert.serialNumber)).equals(Buffer.from(integerMagnitude(sid.serialNumber))),
    };
  }
  // [0] IMPLICIT SubjectKeyIdentifier (sign-file -k).
  const raw = (si.sid as asn1js.Primitive).valueBlock?.valueHexView;
  if (!raw) throw new KbundleError('module signature names its signer in an unknown way');
  const skid = new Uint8Array(raw);
  return {
    signerInfo: si,
    signer: null,
    keyId: colonHex(skid),
    matches: (cert) => {
      const c = subjectKeyIdentifier(cert);
      return c !== null && Buffer.from(c).equals(Buffer.from(skid));
    },
  };
}

/** What the signature covers: the content, or the DER SET of signed attributes after checking their digest. */
function signedBytes(si: pkijs.SignerInfo, body: Buffer, hash: string): Buffer | string {
  if (!si.signedAttrs || si.signedAttrs.attributes.length === 0) return body;
  const md = si.signedAttrs.attributes.find((a) => a.type === OID_MESSAGE_DIGEST)?.values[0];
  if (!(md instanceof asn1js.OctetString)) return 'signed attributes lack a messageDigest';
  if (!Buffer.from(md.valueBlock.valueHexView).equals(createHash(hash).update(body).digest())) return 'content digest mismatch';
  // The signature is over the attributes re-tagged as a universal SET (RFC 5652 §5.4).
  const der = Buffer.from(si.signedAttrs.encodedValue);
  der[0] = 0x31;
  return der;
}

export async function verifyModuleSignature(buf: Buffer, certDerOrPem: Buffer): Promise<ModuleSignatureCheck> {
  const parts = splitSignedModule(buf);
  if (!parts) return { valid: false, signer: null, keyId: null, hashAlgo: null, reason: 'module is not signed' };
  const sd = parseSignedData(parts.cms);
  if (sd.signerInfos.length !== 1) throw new KbundleError(`module signature has ${sd.signerInfos.length} signers; the kernel expects exactly one`);
  const s = describeSigner(sd.signerInfos[0]!);
  const si = s.signerInfo;
  const hashAlgo = hashNameForOid(si.digestAlgorithm.algorithmId);
  const result = { signer: s.signer, keyId: s.keyId, hashAlgo };
  const fail = (reason: string): ModuleSignatureCheck => ({ valid: false, ...result, reason });

  if (sd.encapContentInfo.eContent) return fail('signature is not detached');
  if (!hashAlgo) return fail(`unknown digest algorithm ${si.digestAlgorithm.algorithmId}`);
  const certDer = certificateDer(certDerOrPem);
  const cert = parseCertificate(certDer);
  if (!s.matches(cert)) return fail('signature was made by a different key than this certificate');

  const pub = new X509Certificate(certDer).publicKey;
  const sigOid = si.signatureAlgorithm.algorithmId;
  const keyOid = cert.subjectPublicKeyInfo.algorithm.algorithmId;
  if (keyOid === OID_RSA_ENCRYPTION && sigOid !== OID_RSA_ENCRYPTION) {
    // OpenSSL would accept sha*WithRSAEncryption, but the kernel refuses it (-ENOPKG).
    return fail(`RSA signature algorithm ${sigOid} is not rsaEncryption; the kernel rejects it`);
  }
  if (keyOid === OID_EC_PUBLIC_KEY && !Object.values(ECDSA_SIG_OIDS).includes(sigOid)) return fail(`unexpected ECDSA signature algorithm ${sigOid}`);
  const data = signedBytes(si, parts.body, hashAlgo);
  if (typeof data === 'string') return fail(data);
  const ok = cryptoVerify(hashAlgo, data, pub, Buffer.from(si.signature.valueBlock.valueHexView));
  return ok ? { valid: true, ...result } : fail('signature does not match the module contents');
}

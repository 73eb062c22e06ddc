/**
 * The detached CMS SignedData that the kernel's sign-file emits
 * (scripts/sign-file.c in the kernel tree; docs/signing.md "Signature format"): no certificates, no signed attributes, signer
 * identified by issuer and serial. For RSA the output is byte-identical to
 * `openssl cms -sign -binary -noattr -nocerts -nosmimecap` because PKCS#1 v1.5
 * is deterministic and the encoding below follows OpenSSL's choices.
 */
import { sign as cryptoSign, KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { KbundleError } from '../util/errors.js';
import { ECDSA_SIG_OIDS, HASH_OIDS, OID_DATA, OID_RSA_ENCRYPTION, OID_SIGNED_DATA, type ModuleHash } from './algorithms.js';
import { parseCertificate } from './keys.js';

export interface CmsSignInput {
  content: Buffer;
  key: KeyObject;
  certDer: Buffer;
  hash: ModuleHash;
}

/**
 * The signerInfo signatureAlgorithm. The kernel's pkcs7_sig_note_pkey_algo()
 * accepts only rsaEncryption for RSA (pkijs would default to
 * sha256WithRSAEncryption, which loads as -ENOPKG); OpenSSL writes it with
 * NULL parameters. For ECDSA OpenSSL writes ecdsa-with-SHA* without parameters.
 */
function signatureAlgorithm(key: KeyObject, hash: ModuleHash): pkijs.AlgorithmIdentifier {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return new pkijs.AlgorithmIdentifier({ algorithmId: OID_RSA_ENCRYPTION, algorithmParams: new asn1js.Null() });
    case 'ec':
      return new pkijs.AlgorithmIdentifier({ algorithmId: ECDSA_SIG_OIDS[hash] });
    default:
      throw new KbundleError(`unsupported signing key type ${key.asymmetricKeyType ?? 'unknown'}; use RSA (PKCS#1 v1.5) or ECDSA`);
  }
}

export function buildModuleCms(input: CmsSignInput): Buffer {
  const cert = parseCertificate(input.certDer);
  const sigAlg = signatureAlgorithm(input.key, input.hash);
  // Without signed attributes the signature covers the content itself.
  // node:crypto gives PKCS#1 v1.5 for RSA and DER ECDSA-Sig-Value for EC, the encodings CMS wants.
  const signature = cryptoSign(input.hash, input.content, input.key);
  // Digest AlgorithmIdentifiers carry no NULL parameters, as OpenSSL writes them.
  const digestAlgorithm = () => new pkijs.AlgorithmIdentifier({ algorithmId: HASH_OIDS[input.hash] });
  const signerInfo = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
    digestAlgorithm: digestAlgorithm(),
    signatureAlgorithm: sigAlg,
    signature: new asn1js.OctetString({ valueHex: signature }),
  });
  const signedData = new pkijs.SignedData({
    version: 1,
    digestAlgorithms: [digestAlgorithm()],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID_DATA }),
    signerInfos: [signerInfo],
  });
  const contentInfo = new pkijs.ContentInfo({ contentType: OID_SIGNED_DATA, content: signedData.toSchema() });
  return Buffer.from(contentInfo.toSchema().toBER());
}

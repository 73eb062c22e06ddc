/** Object identifiers used in module signatures (RFC 5652/8017/5758/5480). */
export const MODULE_HASHES = ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'];
export const HASH_OIDS = {
    sha1: '1.3.14.3.2.26',
    sha224: '2.16.840.1.101.3.4.2.4',
    sha256: '2.16.840.1.101.3.4.2.1',
    sha384: '2.16.840.1.101.3.4.2.2',
    sha512: '2.16.840.1.101.3.4.2.3',
};
/**
 * Digests the kernel can verify but kbundle does not sign with; listed so the
 * verifier can name them the way modinfo's sig_hashalgo does.
 */
const EXTRA_HASH_NAMES = {
    '2.16.840.1.101.3.4.2.8': 'sha3-256',
    '2.16.840.1.101.3.4.2.9': 'sha3-384',
    '2.16.840.1.101.3.4.2.10': 'sha3-512',
};
export const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
export const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
export const OID_DATA = '1.2.840.113549.1.7.1';
export const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
export const OID_COMMON_NAME = '2.5.4.3';
export const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
/** ecdsa-with-SHA*; OpenSSL's CMS code names the ECDSA signature this way. */
export const ECDSA_SIG_OIDS = {
    sha1: '1.2.840.10045.4.1',
    sha224: '1.2.840.10045.4.3.1',
    sha256: '1.2.840.10045.4.3.2',
    sha384: '1.2.840.10045.4.3.3',
    sha512: '1.2.840.10045.4.3.4',
};
export function isModuleHash(s) {
    return MODULE_HASHES.includes(s);
}
/** Hash name for a digest OID (node:crypto spelling), or null when unknown. */
export function hashNameForOid(oid) {
    for (const [name, o] of Object.entries(HASH_OIDS))
        if (o === oid)
            return name;
    return EXTRA_HASH_NAMES[oid] ?? null;
}

/**
 * Types for dkms.conf as DKMS reads it: first the raw whitelisted variables
 * that come back from bash, then the per-kernel evaluation the build uses.
 */
export {};

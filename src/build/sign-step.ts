/**
 * The build's signing step: sign a stripped .ko in place and say who signed
 * it. The signing libraries (pkijs/asn1js) take ~150 ms to load, more than a
 * cache-hit build of one kernel, so they are imported only when a key is
 * actually used.
 */
import { readFile } from 'node:fs/promises';
import { KbundleError } from '../util/errors.js';
import type { SigningPlan } from './signing.js';

export interface SignerInfo {
  signer: string;
  keyId: string;
  hash: string;
}

export async function signBuiltModule(path: string, plan: SigningPlan): Promise<SignerInfo> {
  const [{ isModuleHash }, { certificateDer, certificateInfo }, { signModuleInPlace }] = await Promise.all([
    import('../sign/algorithms.js'),
    import('../sign/keys.js'),
    import('../sign/sign-module.js'),
  ]);
  if (!isModuleHash(plan.hash)) throw new KbundleError(`The kernel asks for module signatures with ${plan.hash}, which kbundle cannot make.`);
  const cert = await readFile(plan.certPath);
  await signModuleInPlace(path, { key: plan.keyPath, cert, hash: plan.hash });
  const info = certificateInfo(certificateDer(cert));
  return { signer: info.issuerCN ?? '', keyId: info.serialHex, hash: plan.hash };
}

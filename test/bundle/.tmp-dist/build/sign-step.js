/** The build's signing step: sign a stripped .ko in place and say who signed it. */
import { readFile } from 'node:fs/promises';
import { isModuleHash } from '../sign/algorithms.js';
import { certificateDer, certificateInfo } from '../sign/keys.js';
import { signModuleFile as signInPlace } from '../sign/sign-module.js';
import { KbundleError } from '../util/errors.js';
export async function signModuleFile(path, plan) {
    if (!isModuleHash(plan.hash))
        throw new KbundleError(`The kernel asks for module signatures with ${plan.hash}, which kbundle cannot make.`);
    const cert = await readFile(plan.certPath);
    await signInPlace(path, { key: plan.keyPath, cert, hash: plan.hash });
    const info = certificateInfo(certificateDer(cert));
    return { signer: info.issuerCN ?? '', keyId: info.serialHex, hash: plan.hash };
}

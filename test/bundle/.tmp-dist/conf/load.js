/** dkms.conf for one kernel/arch: source it, read the kernel config, evaluate. */
import { evaluateConf } from './evaluate.js';
import { kernelConfigPath, readKernelConfig } from './kernel-config.js';
import { sourceConf } from './read-raw.js';
export async function loadConf(ctx, opts = {}) {
    const [sourced, kconfig] = await Promise.all([sourceConf(ctx, opts), readKernelConfig(kernelConfigPath(ctx))]);
    return evaluateConf(sourced.raw, ctx, kconfig, sourced.regex);
}

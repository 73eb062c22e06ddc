export * from './types.js';
export { selectBinary, selectGroup, groupCandidates, evaluateGroup } from './select.js';
export { explain, formatReason } from './explain.js';
export { candidateFromElf, candidatesFromTargetConfig } from './candidate.js';
export { compareKernelRelease } from './kernel-order.js';
export { vermagicRelease, vermagicTail, vermagicFlags, hasModversions } from './vermagic.js';

export { readTargetFacts, runningKernel } from './facts.js';
export { readSignaturePolicy, signatureRequired } from './policy.js';
export { findTargetSymvers, symversLookupPaths } from './symvers.js';
export { normalizeModuleName, moduleNameFromPath } from './modules.js';
export { resolveInRoot, isHostRoot } from './rooted.js';

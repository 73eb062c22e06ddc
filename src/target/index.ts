export { readTargetFacts, runningKernel, type TargetFacts, type TargetFactsOptions } from './facts.js';
export { readSignaturePolicy, signatureRequired, type SignaturePolicy } from './policy.js';
export { findTargetSymvers, symversLookupPaths, type TargetSymvers } from './symvers.js';
export { normalizeModuleName, moduleNameFromPath } from './modules.js';
export { resolveInRoot, isHostRoot } from './rooted.js';

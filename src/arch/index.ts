export * from './arch.js';
export * from './exit-codes.js';
export * from './headers-arch.js';
export * from './pair.js';
export * from './toolchain.js';

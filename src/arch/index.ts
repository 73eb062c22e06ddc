export * from './arch.js';
export * from './headers-arch.js';
export * from './pair.js';
export * from './toolchain.js';

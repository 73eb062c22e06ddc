import type TarStream from 'tar-stream';

/**
 * tar-stream, loaded on first use: it reads only archives the header walk
 * does not follow (archive-walk.ts), and loading it (with streamx) on every
 * start-up cost more than most runs use it.
 */
let loaded: Promise<typeof TarStream> | null = null;
export function tarStream(): Promise<typeof TarStream> {
  return (loaded ??= import('tar-stream').then((m) => m.default));
}

/**
 * execa, loaded on first use. Importing it costs ~100 ms on Node 20 (measured
 * with a bare dynamic import), more than a whole `status` run needs, and most
 * runs never spawn through it.
 */
type ExecaModule = typeof import('execa');
let loading: Promise<ExecaModule> | null = null;

export async function loadExeca(): Promise<ExecaModule['execa']> {
  loading ??= import('execa');
  return (await loading).execa;
}

/**
 * Pure rewriting of dkms.conf command strings before they run
 * (docs/dkms-compat.md, "The make command").
 */

/**
 * DKMS's `${make_command/#make/make -jN KERNELRELEASE=k}`: a string-prefix
 * substitution, so only a command that literally begins with "make" gets the
 * flags. jobs 0 means plain -j (unlimited), as in DKMS.
 */
export function injectMakeFlags(command: string, jobs: number, kernel: string): string {
  if (!command.startsWith('make')) return command;
  const j = jobs === 0 ? '-j' : `-j${jobs}`;
  return `make ${j} KERNELRELEASE=${kernel}${command.slice('make'.length)}`;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Confs name the build dir as $dkms_tree/<m>/<v>/build. kbundle builds each
 * kernel in its own dir so kernels can build concurrently; this points such
 * references at that dir. Only whole path references are rewritten (the path
 * followed by a separator or the end), never a longer name sharing the prefix.
 */
export function redirectBuildDir(command: string, from: string, to: string): string {
  if (from === to) return command;
  return command.replace(new RegExp(`${escapeRe(from)}(?=$|[/\\s"';:)&|<>])`, 'g'), to);
}

/** Single-quote a value for bash. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** bash assignments that recreate DKMS's variables for eval'd commands (MAKE's third expansion). */
export function shellPrelude(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join('\n');
}

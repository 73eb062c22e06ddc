/**
 * Which Debian packages make a usable header tree for one kernel release on
 * this host, pure. The flavour package (linux-headers-<k>, for the target
 * arch) depends on its -common package (arch: all, the bulk of the headers)
 * and on linux-kbuild-<series> (scripts/, tools/: compiled programs such as
 * modpost and fixdep). The kbuild programs must run on the *host*, so
 * linux-kbuild comes in the host's arch: this is what `apt-get install
 * linux-headers-<k>:arm64` cannot do on amd64 (it wants arm64 binutils).
 */
export interface HeaderPackage {
  /** apt argument, `name:arch` or `name` for arch: all. */
  spec: string;
  name: string;
  role: 'flavour' | 'common' | 'kbuild';
}

/** The dependency names from an `apt-cache show` Depends: line ("a (>= 1), b | c, d"). */
export function dependsNames(depends: string): string[] {
  return depends
    .split(',')
    .map((alt) => alt.split('|')[0]!.trim().split(/[\s(:]/)[0]!)
    .filter(Boolean);
}

/** The first `Depends:` of an `apt-cache show` record (first stanza: the candidate). */
export function firstDepends(showText: string): string {
  const stanza = showText.split(/\n\n/)[0] ?? '';
  const m = /^Depends: (.*)$/m.exec(stanza);
  return m ? m[1]! : '';
}

export function headerPackages(kernel: string, debianArch: string, hostDebianArch: string, flavourDepends: string): HeaderPackage[] | string {
  const deps = dependsNames(flavourDepends);
  const common = deps.find((d) => /^linux-headers-.*-common(-rt)?$/.test(d));
  const kbuild = deps.find((d) => d.startsWith('linux-kbuild-'));
  if (!common || !kbuild) return `linux-headers-${kernel} (${debianArch}) does not depend on a linux-headers-*-common and a linux-kbuild-* package (Depends: ${flavourDepends || 'none'})`;
  return [
    { spec: `linux-headers-${kernel}:${debianArch}`, name: `linux-headers-${kernel}`, role: 'flavour' },
    { spec: common, name: common, role: 'common' },
    { spec: `${kbuild}:${hostDebianArch}`, name: kbuild, role: 'kbuild' },
  ];
}

/**
 * Debian's flavour Makefile is one line, `include /usr/src/linux-headers-<k>-common/Makefile`;
 * unpacked elsewhere it must name the unpacked copy. Other lines are kept.
 */
export function rewriteMakefile(text: string, unpackedRoot: string): string {
  return text.replace(/^include \/usr\/src\//gm, `include ${unpackedRoot.replace(/\/$/, '')}/usr/src/`);
}

// Debian's real dkms 3.0.10 as an oracle: its own safe_source/read_conf
// functions, cut out of /usr/sbin/dkms and run on a conf, report what DKMS
// would build. Cheap (no build) and exact for everything read_conf decides.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export const DKMS = '/usr/sbin/dkms';
export const haveDkms = existsSync(DKMS);

function extractFunctions(names: string[]): string {
  const lines = readFileSync(DKMS, 'utf8').split('\n');
  const out: string[] = [];
  for (const n of names) {
    const start = lines.findIndex((l) => new RegExp(`^${n}\\(\\)`).test(l));
    if (start < 0) throw new Error(`${DKMS} has no ${n}()`);
    const end = lines.findIndex((l, i) => i > start && l === '}');
    out.push(...lines.slice(start, end + 1));
  }
  return out.join('\n');
}

function whitelist(): string {
  const text = readFileSync(DKMS, 'utf8');
  const m = /readonly dkms_conf_variables="([^"]*)"/.exec(text);
  if (!m) throw new Error('no dkms_conf_variables in dkms');
  return m[1]!.split(/\s+/).filter(Boolean).join(' ');
}

export interface DkmsVerdict {
  ok: boolean;
  make: string;
  clean: string;
  patches: string[];
  excluded: boolean;
  built: string[];
  destName: string[];
  destLocation: string[];
  strip: boolean[];
}

export function dkmsReadConf(conf: string, o: { kernel: string; arch: string; module: string; version: string; dkmsTree: string }): DkmsVerdict {
  const script = `
shopt -s extglob
dkms_conf_variables="${whitelist()}"
deprecated() { echo "Deprecated feature: $*" >&2; }
die() { echo "Error! $*" >&2; return "$1"; }
current_os=Linux
running_distribution=debian
dkms_tree=$4
module=$5
module_version=$6
${extractFunctions(['_get_kernel_dir', 'set_kernel_source_dir_and_kconfig', 'mktemp_or_die', 'override_dest_module_location', 'safe_source', 'read_conf'])}
read_conf "$1" "$2" "$3"; rc=$?
out() { printf '%s\\0' "$@"; }
join() { local IFS='|'; echo -n "$*"; }
out "$rc" "$make_command" "$clean" "$(join "\${patch_array[@]}")" "$build_exclude" \\
  "$(for ((i=0; i<\${#built_module_name[@]}; i++)); do echo -n "\${built_module_location[i]}\${built_module_name[i]}|"; done)" \\
  "$(join "\${dest_module_name[@]}")" "$(join "\${dest_module_location[@]}")" "$(join "\${strip[@]}")"
`;
  const res = execFileSync('bash', ['-c', script, 'dkms', o.kernel, o.arch, conf, o.dkmsTree, o.module, o.version], {
    cwd: '/',
    stdio: ['ignore', 'pipe', 'ignore'],
  }).toString('utf8').split('\0');
  const split = (s: string) => (s === '' ? [] : s.split('|'));
  return {
    ok: res[0] === '0',
    make: res[1]!,
    clean: res[2]!,
    patches: split(res[3]!),
    excluded: res[4] === 'yes',
    built: split(res[5]!.replace(/\|$/, '')),
    destName: split(res[6]!),
    destLocation: split(res[7]!),
    strip: split(res[8]!).map((s) => s !== 'no'),
  };
}

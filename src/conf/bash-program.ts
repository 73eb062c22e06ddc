/**
 * The bash program that sources dkms.conf (and framework.conf) the way DKMS's
 * `safe_source` does. It is kept as close to DKMS's text as possible because
 * the quirks are the contract: a conf that works with DKMS must evaluate to the
 * same values here, including the lossy second expansion.
 *
 * Arguments (positional, so none of them is exported to the conf's commands):
 *   $1        whitelist, space separated
 *   $2 N      then N words "name=value": the DKMS variables visible while sourcing
 *   next M    then M files to source in order (missing ones are skipped)
 *   next      regex requests "ARRAY:subjectvar ..." (see below)
 *   rest      --directive words NAME=value
 *
 * Output goes to fd 3 (stdout of the process), NUL separated, so any byte a
 * value may hold survives:
 *   V NAME INDEX VALUE     every index of every whitelisted variable
 *   R REGEX SUBJECT RC     `[[ SUBJECT =~ REGEX ]]` exit status (0, 1, 2 = bad regex)
 * The regex verdicts come from bash itself because DKMS matches MAKE_MATCH,
 * PATCH_MATCH and BUILD_EXCLUSIVE_* with `=~`, whose POSIX ERE dialect
 * JavaScript's RegExp does not reproduce.
 */
import { CONF_LIMITS } from './limits.js';

export const SAFE_SOURCE_PROGRAM = `
shopt -s extglob
# Whatever a file prints while being re-sourced would reach DKMS's terminal;
# here it goes to stderr so fd 3 carries nothing but records.
exec 3>&1 1>&2

# A ceiling on address space (KiB above what this shell maps now; inherited
# by what the conf runs), so a conf that builds a huge string fails an
# allocation instead of taking the machine's memory. Set only ever lowers it.
_kb_ceiling() {
    local k n _ vm=0 cur
    while read -r k n _; do
        [[ $k == VmSize: ]] && vm=$n
    done 2>/dev/null </proc/$$/status
    (( vm > 0 )) || return 0
    cur=$(ulimit -S -v)
    [[ $cur == unlimited ]] || (( vm + $1 < cur )) || return 0
    ulimit -S -v $((vm + $1)) 2>/dev/null
}
_kb_ceiling ${CONF_LIMITS.memoryKiB}

_kb_whitelist=$1
_kb_n=$2
shift 2
for ((_kb_j = 0; _kb_j < _kb_n; _kb_j++)); do
    printf -v "\${1%%=*}" '%s' "\${1#*=}"
    shift
done
_kb_n=$1
shift
_kb_files=("\${@:1:_kb_n}")
shift "$_kb_n"
_kb_regex=$1
shift
_kb_directives=("$@")
set --

# DKMS unsets the whitelist before sourcing; stray environment variables such
# as MAKE or PACKAGE_NAME must not leak into the result.
for _kb_v in $_kb_whitelist; do unset "$_kb_v"; done

_kb_tmpfiles=()
trap 'rm -f -- "\${_kb_tmpfiles[@]}"' EXIT

# DKMS safe_source (3.4.3 text; 3.0.10 differs only in the CR strip).
safe_source() {
    local to_source_file
    to_source_file="$1"; shift
    declare -a -r export_envs=( $@ )
    local -r CR=$(echo -e '\\r')
    local tmpfile
    tmpfile=$(mktemp) || { echo "kbundle: unable to make temporary file" >&2; exit 1; }
    _kb_tmpfiles+=("$tmpfile")
    ( exec >"$tmpfile"
    # 3>&-: fd 3 carries our records; a command the conf leaves running in
    # the background must not hold it open (or write into it).
    . "$to_source_file" >/dev/null 3>&-
    for _export_env in "\${export_envs[@]}"; do
        for _i in $(eval echo \\\${!"\${_export_env}"[@]}); do
            # DKMS writes \${NAME[$_i]%$CR} here; bash tries that suffix pattern
            # at every position of a value that does not end in CR, which is
            # quadratic (a 1 MB value took minutes). Same result, linear.
            eval '_kb_s=\${'"\${_export_env}"'[$_i]}'
            [[ $_kb_s == *"$CR" ]] && _kb_s=\${_kb_s:0:\${#_kb_s}-1}
            echo $_export_env[$_i]=\\"$_kb_s\\"
        done
    done

    for directive in $(set | grep ^DKMS_DIRECTIVE | cut -d = -f 2-3); do
        directive_name=\${directive%%=*}
        directive_value=\${directive#*=}
        echo "$directive_name=\\"$directive_value\\""
    done
    )
    . "$tmpfile" 3>&-
    rm -f -- "$tmpfile"
}

for _kb_f in "\${_kb_files[@]}"; do
    [[ -e $_kb_f ]] && safe_source "$_kb_f" "$_kb_whitelist"
done

# As DKMS read_conf: directives are exported after the files, with no
# further expansion.
for directive in "\${_kb_directives[@]}"; do
    directive_name=\${directive%%=*}
    directive_value=\${directive#*=}
    export "$directive_name"="$directive_value"
done

for _kb_v in $_kb_whitelist; do
    eval '_kb_idx=("\${!'"$_kb_v"'[@]}")'
    for _kb_i in "\${_kb_idx[@]}"; do
        eval '_kb_val=\${'"$_kb_v"'[_kb_i]}'
        printf 'V\\0%s\\0%s\\0%s\\0' "$_kb_v" "$_kb_i" "$_kb_val" >&3
    done
done

# glibc compiles a bounded repetition by copying it, so a short regex such
# as ((a{1,255}){1,255}){1,255} asks for gigabytes. With a ceiling (256 MiB
# above what this shell already maps) regcomp fails instead and bash answers
# 2 (invalid), which is what a broken regex means to DKMS anyway.
_kb_ceiling 262144
for _kb_spec in $_kb_regex; do
    _kb_v=\${_kb_spec%%:*}
    _kb_sv=\${_kb_spec#*:}
    _kb_subj=\${!_kb_sv}
    eval '_kb_idx=("\${!'"$_kb_v"'[@]}")'
    for _kb_i in "\${_kb_idx[@]}"; do
        eval '_kb_re=\${'"$_kb_v"'[_kb_i]}'
        [[ $_kb_re ]] || continue
        [[ $_kb_subj =~ $_kb_re ]]
        printf 'R\\0%s\\0%s\\0%s\\0' "$_kb_re" "$_kb_subj" "$?" >&3
    done
done
exit 0
`;

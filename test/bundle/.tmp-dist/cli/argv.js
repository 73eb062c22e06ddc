/**
 * DKMS accepts options before or after the action
 * (`dkms --dkmstree D add m/v` == `dkms add m/v --dkmstree D`). commander
 * wants the command first, so the action word(s) are moved to the front,
 * skipping words that are values of options.
 */
/** Options that take a value (short and long forms). */
export const VALUE_OPTIONS = new Set([
    '-m', '--module', '-v', '--version-of', '-k', '--kernelver', '-a', '--arch', '-j', '-c',
    '--kernelsourcedir', '--dkmstree', '--sourcetree', '--installtree', '--cache-dir', '--directive',
    '--etcdir', '--archive', '--templatekernel', '--config', '--trust', '--keyring', '-o', '--output',
    '--shard', '--key', '--root', '--framework-conf',
]);
export function normalizeArgv(args, commands, nested) {
    const words = [];
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === '--')
            break;
        if (a.startsWith('-')) {
            if (!a.includes('=') && VALUE_OPTIONS.has(a))
                i++;
            continue;
        }
        words.push(i);
        // a nested command group (bundle build) takes its sub-command too
        if (words.length === 1 && !nested.has(a))
            break;
        if (words.length === 2)
            break;
    }
    if (!words.length || !commands.has(args[words[0]]))
        return args;
    const take = nested.has(args[words[0]]) ? words : words.slice(0, 1);
    const picked = take.map((i) => args[i]);
    const rest = args.filter((_, i) => !take.includes(i));
    return [...picked, ...rest];
}
/** `m/v` -> {module, version}; DKMS splits on the first '/'. */
export function splitModuleVersion(s) {
    const i = s.indexOf('/');
    return i < 0 ? { module: s } : { module: s.slice(0, i), version: s.slice(i + 1) };
}
/** -k k[/a] entries paired 1:1 with -a (one -a applies to all), like DKMS. */
export function pairKernelsArches(kernels, arches, defaultKernel, defaultArch) {
    const ks = kernels.length ? kernels : [defaultKernel];
    if (arches.length > 1 && arches.length !== ks.length) {
        return 'If more than one arch is specified on the command line, then there must be an equal number of kernel versions also specified (1:1 relationship).';
    }
    return ks.map((k, i) => {
        const slash = k.indexOf('/');
        if (slash >= 0)
            return { kernel: k.slice(0, slash), arch: k.slice(slash + 1) };
        return { kernel: k, arch: arches.length === 1 ? arches[0] : (arches[i] ?? defaultArch) };
    });
}

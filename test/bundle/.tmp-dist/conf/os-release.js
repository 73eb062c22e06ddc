/**
 * os-release and DKMS's per-distribution DEST_MODULE_LOCATION override
 * (`distro_version` + `override_dest_module_location`).
 */
import { readFileSync } from 'node:fs';
/** os-release(5): KEY=value, value optionally in single or double quotes. */
export function parseOsRelease(text) {
    const vals = new Map();
    for (const line of text.split('\n')) {
        const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
        if (!m)
            continue;
        let v = m[2];
        if (v.length >= 2 && v.startsWith('"') && v.endsWith('"'))
            v = v.slice(1, -1).replace(/\\([\\$"`])/g, '$1');
        else if (v.length >= 2 && v.startsWith("'") && v.endsWith("'"))
            v = v.slice(1, -1);
        vals.set(m[1], v);
    }
    return { id: vals.get('ID') ?? 'linux', idLike: vals.has('ID_LIKE') ? vals.get('ID_LIKE') : null };
}
/** /etc/os-release, else /usr/lib/os-release (as DKMS 3.4.3); null if neither exists. */
export function readOsRelease(path = '/etc/os-release') {
    for (const p of path === '/etc/os-release' ? [path, '/usr/lib/os-release'] : [path]) {
        try {
            return parseOsRelease(readFileSync(p, 'utf8'));
        }
        catch {
            // try the next one
        }
    }
    return null;
}
/** DKMS's $running_distribution: ubuntu by ID, else the whole ID_LIKE, else ID. */
export function distroName(os) {
    if (os.id === 'ubuntu')
        return os.id;
    if (os.idLike !== null)
        return os.idLike;
    return os.id;
}
/**
 * Where DKMS really installs a module whose conf says `destLocation`.
 * addonModulesDir ($ADDON_MODULES_DIR) beats everything, as in DKMS.
 */
export function destLocationForDistro(destLocation, osRelease, addonModulesDir) {
    if (addonModulesDir)
        return `/${addonModulesDir}`;
    const d = distroName(osRelease);
    if (/^(fedora|rhel|ovm|centos)/.test(d))
        return '/extra';
    if (/^(sles|suse|opensuse)/.test(d))
        return '/updates';
    if (/^(debian|ubuntu|arch)/.test(d))
        return '/updates/dkms';
    return destLocation;
}

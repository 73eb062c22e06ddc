// A throwaway copy of this machine (test/dropin/sandbox.sh: private mount
// namespace, overlay over /, chroot) in which dpkg, the kernel hooks and
// /usr/sbin/dkms act for real without touching the machine's own trees.
import { spawn, execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { testCacheDir } from '../helpers/debian-dkms.js';
import { moduleIdentity } from './module-identity.js';

const isSymlink = (p: string) => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};

const SCRIPT = resolve('test/dropin/sandbox.sh');
export const REPO = resolve('.');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Can this process make the overlay (root, mount namespaces allowed, overlayfs)? */
export function sandboxAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  const dir = mkdtempSync('/var/tmp/kbundle-sandbox-probe-');
  try {
    execFileSync('bash', [SCRIPT, dir, 'true'], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class Sandbox {
  readonly state: string;
  constructor(label: string) {
    mkdirSync('/var/tmp', { recursive: true });
    this.state = mkdtempSync(`/var/tmp/kbundle-dropin-${label}-`);
  }

  run(script: string, timeoutMs = 900_000): Promise<Run> {
    return new Promise((done, fail) => {
      const p = spawn('bash', [SCRIPT, this.state, 'bash', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      p.on('error', fail);
      p.on('close', (code) => {
        clearTimeout(t);
        done({ code: code ?? -1, stdout, stderr });
      });
    });
  }

  /** What a user compares: status lines, installed module files (path + sha256), depmod's view of them, the module's DKMS tree entries. */
  async snapshot(module: string): Promise<Snapshot> {
    const r = await this.run(`
      set -e
      echo '## status'; dkms status 2>/dev/null | sort
      echo '## files'; find /lib/modules/*/updates /lib/modules/*/extra /lib/modules/*/kernel/drivers/dkms -type f 2>/dev/null | sort
      echo '## modules.dep'; grep -h -E '^(updates|extra)/' /lib/modules/*/modules.dep 2>/dev/null | sort
      echo '## tree'; cd /var/lib/dkms && find . -mindepth 1 -maxdepth 1 -name ${JSON.stringify(module)} | sort
    `);
    // Line by line: an empty section is followed directly by the next header.
    const sections = new Map<string, string[]>();
    let current: string[] = [];
    for (const line of r.stdout.split('\n')) {
      const header = /^## (.+)$/.exec(line);
      if (header) sections.set(header[1]!, (current = []));
      else if (line) current.push(line);
    }
    if (r.code !== 0 || !sections.has('tree')) throw new Error(`snapshot failed (exit ${r.code}): ${r.stderr}`);
    const section = (name: string) => sections.get(name) ?? [];
    // Module files are read from the copy's upper layer (the installs wrote them there; /lib is /usr/lib on Debian 12).
    const files = section('files').map((f) => `${f} ${moduleIdentity(this.hostPath(f))}`);
    return { status: section('status'), files, modulesDep: section('modules.dep'), tree: section('tree') };
  }

  /** Where a file the copy wrote is on the host. */
  hostPath(p: string): string {
    const real = p.startsWith('/lib/') && isSymlink('/lib') ? `/usr${p}` : p;
    return join(this.state, 'upper', real);
  }

  dispose(): void {
    rmSync(this.state, { recursive: true, force: true });
  }
}

export interface Snapshot {
  status: string[];
  files: string[];
  modulesDep: string[];
  tree: string[];
}

/** The .deb of a Debian package, downloaded once into the test cache (visible inside sandboxes: it is on /). */
export function debFile(pkg: string): string {
  const dir = join(testCacheDir(), 'debs');
  mkdirSync(dir, { recursive: true });
  const have = () => readdirSync(dir).find((n) => n.startsWith(`${pkg}_`) && n.endsWith('.deb'));
  if (!have()) execFileSync('apt-get', ['download', pkg], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  return join(dir, have()!);
}

/** Turns a sandbox into one where /usr/sbin/dkms is kbundle. */
export const DROPIN = `${REPO}/bin/kbundle dropin install >/dev/null`;

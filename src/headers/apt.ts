/**
 * apt with a private state directory: its own package lists (for the host's
 * arch and the target's, without `dpkg --add-architecture` or touching the
 * system's lists) and its own archive cache, reading the system's
 * sources.list. Everything runs as apt-get/apt-cache would from a shell.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadExeca } from '../util/execa.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

export class PrivateApt {
  constructor(
    readonly stateDir: string,
    readonly debianArches: string[],
  ) {}

  private options(): string[] {
    return [
      '-o', `Dir::State::Lists=${join(this.stateDir, 'lists')}`,
      '-o', `Dir::Cache=${join(this.stateDir, 'cache')}`,
      // The lists are ours alone; the system's dpkg lock is not involved.
      '-o', 'Debug::NoLocking=1',
      ...this.debianArches.flatMap((a) => ['-o', `APT::Architectures::=${a}`]),
    ];
  }

  private async run(tool: string, args: string[], cwd?: string) {
    const execa = await loadExeca();
    const r = await execa(tool, [...this.options(), ...args], { reject: false, cwd, stdin: 'ignore', env: { LC_ALL: 'C' } });
    return r;
  }

  /** Marks lists fetched for exactly this set of arches. */
  private marker(): string {
    return join(this.stateDir, 'lists', `.updated-${[...this.debianArches].sort().join('-')}`);
  }

  hasLists(): boolean {
    return existsSync(this.marker());
  }

  async update(): Promise<void> {
    for (const d of ['lists/partial', 'cache/archives/partial']) await mkdir(join(this.stateDir, d), { recursive: true });
    const r = await this.run('apt-get', ['update', '-q']);
    if (r.exitCode !== 0) throw new KbundleError(`apt-get update (private lists in ${this.stateDir}) failed: ${String(r.stderr).trim().split('\n').slice(-3).join(' / ')}`, ExitCode.HeadersFetchFailed);
    const { writeFileDurable } = await import('../util/atomic.js');
    await writeFileDurable(this.marker(), `${new Date().toISOString()}\n`);
  }

  /** `apt-cache show PKG` text, or null when apt does not know the package. */
  async show(spec: string): Promise<string | null> {
    const r = await this.run('apt-cache', ['show', spec]);
    return r.exitCode === 0 && String(r.stdout).trim() ? String(r.stdout) : null;
  }

  /** Names of packages matching an extended regex (apt-cache search --names-only). */
  async search(regex: string): Promise<string[]> {
    const r = await this.run('apt-cache', ['search', '--names-only', regex]);
    return String(r.stdout).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
  }

  /** `apt-get download` into `dir`. */
  async download(specs: string[], dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const r = await this.run('apt-get', ['download', '-q', ...specs], dir);
    if (r.exitCode !== 0) throw new KbundleError(`apt-get download ${specs.join(' ')} failed: ${String(r.stderr).trim().split('\n').filter((l) => !l.startsWith('W:')).slice(-3).join(' / ')}`, ExitCode.HeadersFetchFailed);
  }
}

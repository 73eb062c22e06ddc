// framework.conf (+ framework.conf.d) sourced with DKMS's whitelist.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFrameworkConf } from '../../src/conf/framework.js';
import { KbundleError } from '../../src/util/errors.js';
import { tempDir } from './conf-helpers.js';

describe('readFrameworkConf', () => {
  it('is empty when no file exists', async () => {
    expect(await readFrameworkConf(join(tempDir(), 'framework.conf'))).toEqual({});
  });

  it('reads whitelisted variables, conf.d files last and in name order, $kernelver visible', async () => {
    const d = tempDir();
    writeFileSync(join(d, 'framework.conf'), [
      'dkms_tree="/srv/dkms"',
      'parallel_jobs=3',
      'sign_file=/usr/lib/linux-kbuild/scripts/sign-file',
      'mok_signing_key="/keys/$kernelver.key"',
      'not_on_the_list=x',
      'source_tree=/wrong',
    ].join('\n'));
    mkdirSync(join(d, 'framework.conf.d'));
    writeFileSync(join(d, 'framework.conf.d', '20-b.conf'), 'source_tree=/second\n');
    writeFileSync(join(d, 'framework.conf.d', '10-a.conf'), 'source_tree=/first\ncompress_xz_opts="--check=crc32   -9"\n');
    writeFileSync(join(d, 'framework.conf.d', 'ignored.txt'), 'source_tree=/never\n');
    const fw = await readFrameworkConf(join(d, 'framework.conf'), '6.1.0-56-amd64');
    expect(fw).toEqual({
      dkmsTree: '/srv/dkms',
      parallelJobs: 3,
      signFile: '/usr/lib/linux-kbuild/scripts/sign-file',
      mokSigningKey: '/keys/6.1.0-56-amd64.key',
      sourceTree: '/second',
      compressXzOpts: '--check=crc32 -9',
    });
  });

  it('rejects a parallel_jobs that is not a number', async () => {
    const d = tempDir();
    writeFileSync(join(d, 'framework.conf'), 'parallel_jobs=lots\n');
    const e = await readFrameworkConf(join(d, 'framework.conf')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(KbundleError);
    expect((e as KbundleError).message).toContain('parallel_jobs must be a whole number');
  });
});

describe('readFrameworkConf without bash', () => {
  // The literal fast path must give exactly what sourcing gives; a text it does
  // not recognise goes to bash. Each case is compared with the bash result.
  const cases: Record<string, string> = {
    'comments only (Debian\'s file)': '# dkms_tree="/var/lib/dkms"\n\n   # sign_file=x\n',
    literals: 'dkms_tree="/srv/dkms"\nparallel_jobs=3\nexport source_tree=/src # trailing comment\ncompress_xz_opts=\'--check=crc32   -9\'\nnot_listed=1\n',
    'hash inside a word (bash)': 'install_tree=/lib/mod#ules\n',
    'expansion (bash)': 'dkms_tree=/srv/$kernelver\n',
    'command substitution (bash)': 'dkms_tree=$(echo /x)\n',
    'glob in quotes (bash)': 'source_tree="/usr/s*"\n',
  };
  for (const [name, text] of Object.entries(cases)) {
    it(`gives what bash gives: ${name}`, async () => {
      const { literalAssignments } = await import('../../src/conf/framework.js');
      const { runSafeSource } = await import('../../src/conf/run-bash.js');
      const { FRAMEWORK_VARIABLES } = await import('../../src/conf/whitelist.js');
      const d = tempDir();
      const f = join(d, 'framework.conf');
      writeFileSync(f, text);
      const literal = await literalAssignments([f]);
      if (name.endsWith('(bash)')) expect(literal).toBeNull();
      else expect(literal).not.toBeNull();
      const viaBash = await readFrameworkConf(f, '6.1.0-56-amd64');
      const r = await runSafeSource({ whitelist: FRAMEWORK_VARIABLES, vars: { kernelver: '6.1.0-56-amd64' }, files: [f], cwd: '/' });
      for (const [k, arr] of r.raw) {
        const v = arr.get(0);
        const camel = k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
        if (v) expect(String((viaBash as Record<string, unknown>)[camel])).toBe(v);
      }
      if (literal) for (const [k, v] of literal) if (FRAMEWORK_VARIABLES.includes(k) && v) expect(r.raw.get(k)?.get(0)).toBe(v);
    });
  }
});

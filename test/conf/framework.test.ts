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

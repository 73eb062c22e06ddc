// The durable-write module: what a reader or a killed writer can observe.
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  commitStagedDir,
  copyFileDurable,
  isTempName,
  PartFile,
  stagingDirFor,
  sweepTemps,
  symlinkDurable,
  tempOwner,
  tempPathFor,
  writeFileDurable,
} from '../../src/util/atomic.js';

const scratch = () => mkdtempSync(join(tmpdir(), 'kbundle-atomic-'));

/** A pid that is certainly not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('atomic writes', () => {
  test('write, copy and symlink replace the final name and leave no temp; mode is exact whatever the umask', async () => {
    const d = scratch();
    const old = process.umask(0o077);
    try {
      await writeFileDurable(join(d, 'sub/dir/a'), 'one', { mode: 0o644 });
      await writeFileDurable(join(d, 'sub/dir/a'), 'two', { mode: 0o644 });
      await copyFileDurable(join(d, 'sub/dir/a'), join(d, 'b'), { mode: 0o755 });
      await symlinkDurable('sub/dir/a', join(d, 'l'));
      await symlinkDurable('b', join(d, 'l'));
    } finally {
      process.umask(old);
    }
    expect(readFileSync(join(d, 'sub/dir/a'), 'utf8')).toBe('two');
    expect(lstatSync(join(d, 'sub/dir/a')).mode & 0o777).toBe(0o644);
    expect(lstatSync(join(d, 'b')).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(d, 'l'))).toBe('b');
    expect(readdirSync(d).sort()).toEqual(['b', 'l', 'sub']);
    expect(readdirSync(join(d, 'sub/dir'))).toEqual(['a']);
  });

  test('a failed copy leaves the old file and no temp', async () => {
    const d = scratch();
    writeFileSync(join(d, 'x'), 'old');
    await expect(copyFileDurable(join(d, 'missing'), join(d, 'x'))).rejects.toThrow(/ENOENT/);
    expect(readFileSync(join(d, 'x'), 'utf8')).toBe('old');
    expect(readdirSync(d)).toEqual(['x']);
  });

  test('a staged directory is published whole, replacing the old one', async () => {
    const d = scratch();
    mkdirSync(join(d, 'kad/module'), { recursive: true });
    writeFileSync(join(d, 'kad/module/old.ko'), 'old');
    const st = await stagingDirFor(join(d, 'kad'));
    expect(isTempName(st.split('/').pop()!)).toBe(true);
    mkdirSync(join(st, 'module'));
    writeFileSync(join(st, 'module/new.ko'), 'new');
    await commitStagedDir(st, join(d, 'kad'));
    expect(readdirSync(join(d, 'kad/module'))).toEqual(['new.ko']);
    expect(readdirSync(d)).toEqual(['kad']);
  });

  test('PartFile: nothing under the final name until commit; abort leaves nothing', () => {
    const d = scratch();
    const p = new PartFile(join(d, 'blob'));
    p.write(Buffer.from('abc'));
    expect(readdirSync(d)).toHaveLength(1);
    expect(readdirSync(d)[0]).not.toBe('blob');
    p.commit();
    expect(readFileSync(join(d, 'blob'), 'utf8')).toBe('abc');
    const q = new PartFile(join(d, 'other'));
    q.write(Buffer.from('x'));
    q.abort();
    expect(readdirSync(d)).toEqual(['blob']);
  });

  test('the sweep removes temps of dead writers only (and legacy names when asked)', async () => {
    const d = scratch();
    const dead = deadPid();
    const deadTemp = tempPathFor(join(d, 'f')).replace(`-${process.pid}-`, `-${dead}-`);
    writeFileSync(deadTemp, '');
    mkdirSync(tempPathFor(join(d, 'dir')).replace(`-${process.pid}-`, `-${dead}-`));
    const liveTemp = tempPathFor(join(d, 'g'));
    writeFileSync(liveTemp, '');
    writeFileSync(join(d, '.h.tmp-1-abcd'), '');
    writeFileSync(join(d, 'keep'), '');
    expect(tempOwner(deadTemp.split('/').pop()!)).toBe(dead);
    const removed = await sweepTemps([d]);
    expect(removed).toHaveLength(2);
    expect(readdirSync(d).sort()).toEqual(['.h.tmp-1-abcd', liveTemp.split('/').pop()!, 'keep'].sort());
    await sweepTemps([d], { legacy: true });
    expect(readdirSync(d).sort()).toEqual([liveTemp.split('/').pop()!, 'keep'].sort());
  });
});

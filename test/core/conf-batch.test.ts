// The two pieces `status` relies on to evaluate many dkms.confs quickly:
// static-scan.ts (which confs can be remembered and batched) and batch.ts
// (many static confs in one bash), which must give exactly what
// read-raw.ts's sourceConf gives, conf by conf, errors included.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SAFE_SOURCE_PROGRAM } from '../../src/conf/bash-program.js';
import { BATCH_PROGRAM, CEILING_FUNCTION, RECORDS_TAIL, sourceConfs } from '../../src/conf/batch.js';
import { sourceConf } from '../../src/conf/read-raw.js';
import { scanConfText } from '../../src/conf/static-scan.js';
import type { ConfContext } from '../../src/conf/types.js';
import { ConfLayoutResolver } from '../../src/tree/layout-cache.js';
import { twoKernels } from '../helpers/kernels.js';
import { pool, Rng } from '../helpers/prng.js';
import { ctxFor, tempDir, writeConf } from '../conf/conf-helpers.js';

const [K1, K2] = twoKernels();

describe('static-scan', () => {
  const STATIC = [
    'PACKAGE_NAME="hello"\nPACKAGE_VERSION="1.0"\nBUILT_MODULE_NAME[0]="hello"\nDEST_MODULE_LOCATION[0]="/extra"\n',
    'MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build"\n',
    "MAKE='make KVER=$kernelver'\nBUILD_EXCLUSIVE_KERNEL=\"^(5\\.[0-9]+|6\\..*)\"\n",
    'i=0\nfor m in a b c; do\n  BUILT_MODULE_NAME[$i]=$m; DEST_MODULE_LOCATION[i]=/extra; i=$((i+1))\ndone\n',
    'case "$kernelver" in\n  6.1.*) MAKE="make OLD=1" ;;\n  *) MAKE="make" ;;\nesac\n',
    'if [ "$arch" = x86_64 ] && [[ $kernelver =~ ^6\\. ]]; then\n  STRIP[0]=no\nelif test -n "$arch"; then :\nelse echo "no arch" >&2; fi\n',
    'BUILD_DEPENDS=(base "other one")\nexport X=1\nunset X\n# $(comment) `is` ignored\n',
    'PACKAGE_NAME=crlf\r\nPACKAGE_VERSION=1\r\n',
  ];
  const DYNAMIC: [string, RegExp][] = [
    ['V=$(uname -r)\n', /command substitution/],
    ['V=`uname -r`\n', /command substitution/],
    ['. /etc/foo\n', /runs \./],
    ['if grep -q x /boot/config; then A=1; fi\n', /runs grep/],
    ['[ -f $kernel_source_dir/.config ] && A=1\n', /file system with -f/],
    ['[[ -e /x ]] && A=1\n', /file system with -e/],
    ['A=${!name}\n', /indirect/],
    ['A=$RANDOM\n', /RANDOM/],
    ['A=$$\n', /special parameter/],
    ['for f in /lib/modules/*; do A=$f; done\n', /glob/],
    ["A='say \"hi\"'\n", /second expansion/],
    ['A="x\\"y"\n', /escapes "/],
    ['A="a *"\n', /glob character and whitespace/],
    ['eval "A=1"\n', /runs eval/],
    ['IFS=: \n', /assigns IFS/],
    ['declare -A M\n', /runs declare/],
    ['read A < /etc/x\n', /reads a file|runs read/],
    ['echo x > /tmp/y\n', /writes somewhere/],
    ['echo x >&3\n', /writes somewhere/],
    ["A=$'\\x41'\n", /quoting/],
    ['f() { :; }\n', /runs f|\(/],
    ['A=~root\n', /~user/],
  ];
  it.each(STATIC)('static: %j', (t) => expect(scanConfText(t).dynamic).toBeNull());
  it.each(DYNAMIC)('dynamic: %j', (t, why) => expect(scanConfText(t).dynamic).toMatch(why));
  it('collects what the text reads, second-pass reads included', () => {
    const r = scanConfText("MAKE='$kernelver ${arch}'\nA=\"$kernel_source_dir\"\nB=$((i + j))\nC=~/x\n");
    expect([...r.reads].sort()).toEqual(['HOME', 'arch', 'i', 'j', 'kernel_source_dir', 'kernelver']);
    expect([...r.arithReads].sort()).toEqual(['i', 'j']);
  });
});

/** What a sourced conf comes back as, comparable with toEqual. */
function shape(o: { raw: Map<string, Map<number, string>>; regex: Map<string, string> } | Error): unknown {
  if (o instanceof Error) return { error: o.message };
  return {
    raw: [...o.raw].map(([k, v]) => [k, [...v]]).sort(),
    regex: [...o.regex].sort(),
  };
}

async function single(ctx: ConfContext): Promise<unknown> {
  try {
    return shape(await sourceConf(ctx));
  } catch (e) {
    return shape(e as Error);
  }
}

/** Random static confs from statements DKMS confs use. */
function randomConf(rng: Rng): string {
  const names = ['PACKAGE_NAME', 'PACKAGE_VERSION', 'BUILT_MODULE_NAME', 'DEST_MODULE_NAME', 'DEST_MODULE_LOCATION', 'MAKE', 'MAKE_MATCH', 'PATCH', 'PATCH_MATCH', 'STRIP', 'AUTOINSTALL', 'BUILD_EXCLUSIVE_KERNEL', 'BUILD_EXCLUSIVE_ARCH', 'CLEAN', 'X', 'Y'];
  const values = [
    'foo', '"a b"', "'$kernelver'", '"${PACKAGE_NAME}-x"', '$X', '"${X:-def}"', '${arch}', '"/extra"', '"/kernel/drivers/net"',
    '"^6\\.1"', "'^6\\.1[0-9]'", "'${module}'", '""', '"$kernel_source_dir/x"', '$((1+2))', '"${X/a/b}"', '"line1\nline2"',
    '"  spaced   out "', 'yes', 'no', '"${#X}"', '"${kernelver%%-*}"', '"x\\ty"', "'$dkms_tree/$module_version'", '"${Y:=fill}"',
  ];
  const idx = ['0', '1', '2', '5', '$i', 'i+1'];
  const assign = (): string => {
    const n = rng.pick(names);
    const sub = rng.chance(0.5) ? `[${rng.pick(idx)}]` : '';
    return `${n}${sub}${rng.chance(0.1) ? '+=' : '='}${rng.pick(values)}`;
  };
  const stmt = (depth: number): string => {
    const k = depth > 1 ? 0 : rng.int(8);
    switch (k) {
      case 1:
        return `if [ "$kernelver" = "${rng.pick([K1, '6.1'])}" ]; then ${assign()}; else ${assign()}; fi`;
      case 2:
        return `case "$kernelver" in\n  6.1.*) ${assign()} ;;\n  *) ${stmt(depth + 1)} ;;\nesac`;
      case 3:
        return `for x in a b c; do ${assign()}; i=$((i+1)); done`;
      case 4:
        return `[[ $arch =~ ^x86 ]] && ${assign()}`;
      case 5:
        return rng.pick(['unset X', 'export Y=1', 'i=$((i+1))', 'echo "note" >&2', 'true', ': "${X:=y}"', 'X=$Y', 'unset MAKE']);
      default:
        return assign();
    }
  };
  const lines = ['i=0'];
  for (let n = 2 + rng.int(10); n > 0; n--) lines.push(stmt(0));
  return `${lines.join('\n')}\n`;
}

describe('batch.ts: many static confs in one bash', () => {
  it('is built from SAFE_SOURCE_PROGRAM\'s own ceiling and record code', () => {
    expect(CEILING_FUNCTION).toMatch(/^_kb_ceiling\(\) \{[\s\S]*ulimit -S -v[\s\S]*\n\}\n$/);
    expect(RECORDS_TAIL).toContain("printf 'V\\0%s\\0%s\\0%s\\0'");
    expect(RECORDS_TAIL).toContain("printf 'R\\0%s\\0%s\\0%s\\0'");
    for (const part of [CEILING_FUNCTION, RECORDS_TAIL]) {
      expect(SAFE_SOURCE_PROGRAM).toContain(part);
      expect(BATCH_PROGRAM).toContain(part);
    }
  });

  it('gives what sourceConf gives, for 160 random static confs and 2 kernels', async () => {
    const dir = tempDir();
    const rng = new Rng(0x57a7);
    const ctxs: ConfContext[] = [];
    for (let c = 0; c < 160; c++) {
      const text = randomConf(rng);
      expect(scanConfText(text).dynamic, text).toBe(null);
      const p = writeConf(dir, text, `r${c}`);
      for (const k of [K1, K2]) ctxs.push(ctxFor(p, k, { module: `r${c}`, moduleVersion: '1' }));
    }
    const stats = { batched: 0, alone: 0 };
    const batch = (await sourceConfs(ctxs, { stats })).map(shape);
    expect(stats).toEqual({ batched: ctxs.length, alone: 0 });
    const one = await pool(ctxs, 4, single);
    for (let i = 0; i < ctxs.length; i++) expect(batch[i], `${ctxs[i]!.confPath} on ${ctxs[i]!.kernelver}`).toEqual(one[i]);
  });

  it('gives what sourceConf gives for override files, directives, limits and errors, and routes dynamic confs through sourceConf', async () => {
    const dir = tempDir();
    const etc = join(dir, 'etc');
    mkdirSync(etc);
    writeFileSync(join(etc, 'ov.conf'), "MAKE='make OVERRIDE=$kernelver'\nDEST_MODULE_LOCATION[0]=/updates\n");
    writeFileSync(join(etc, `ov-1-${K2}.conf`), 'STRIP[0]=no\n');
    const confs: [string, string, Partial<ConfContext>][] = [
      ['ov', 'PACKAGE_NAME=ov\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME[0]=ov\nDEST_MODULE_LOCATION[0]=/extra\n', { overridesDir: etc }],
      ['dir', 'PACKAGE_NAME=d\nMAKE=x\n', { directives: ['MAKE=from directive', 'EXTRA=1'] }],
      ['big', `PACKAGE_NAME="${'x'.repeat(70 * 1024)}"\n`, {}],
      ['index', 'MAKE[2000]=x\n', {}],
      ['syntax', 'if true; then A=1\n', {}],
      ['patch', "PATCH[0]=a.patch\nPATCH_MATCH[0]='^6\\.1'\nPATCH[1]=b.patch\nPATCH_MATCH[1]='('\n", {}],
      ['dyn', 'PACKAGE_NAME=$(echo dyn)\n', {}],
      ['exit', 'A=1\nreturn 3\nPACKAGE_NAME=never\n', {}],
    ];
    const ctxs = confs.flatMap(([name, text, extra]) => {
      const p = writeConf(dir, text, name);
      return [K1, K2].map((k) => ctxFor(p, k, { module: name, moduleVersion: '1', ...extra }));
    });
    const stats = { batched: 0, alone: 0 };
    const batch = (await sourceConfs(ctxs, { stats })).map(shape);
    const one = await pool(ctxs, 4, single);
    for (let i = 0; i < ctxs.length; i++) expect(batch[i], `${ctxs[i]!.confPath} on ${ctxs[i]!.kernelver}`).toEqual(one[i]);
    // dyn and exit (return is not on the static list) go alone; syntax stops at bash -n; the other five are batched.
    expect(stats).toEqual({ batched: 10, alone: 4 });
    expect((one[ctxs.findIndex((c) => c.confPath.includes('/big/'))] as { error: string }).error).toMatch(/64 KiB/);
  });

  it('stops a conf that never finishes without losing the others', async () => {
    const dir = tempDir();
    const ctxs = ['MAKE=1\n', 'while true; do :; done\n', 'CLEAN=2\n', 'PRE_BUILD=3\n'].map((t, i) => ctxFor(writeConf(dir, t, `l${i}`), K1));
    const stats = { batched: 0, alone: 0 };
    const t0 = Date.now();
    const out = await sourceConfs(ctxs, { timeoutMs: 1500, concurrency: 1, stats });
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect((out[1] as Error).message).toMatch(/did not finish within 1.5 s/);
    expect(out.map((o) => (o instanceof Error ? null : [...o.raw.keys()]))).toEqual([['MAKE'], null, ['CLEAN'], ['PRE_BUILD']]);
    expect(stats.batched).toBe(4);
  });
});

describe('layout cache keys', () => {
  const withEnv = async <T>(vars: Record<string, string>, fn: () => T | Promise<T>): Promise<T> => {
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    Object.assign(process.env, vars);
    try {
      return await fn();
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  };
  const key = (r: ConfLayoutResolver, ctx: ConfContext): string | null => {
    const p = r.plan(ctx);
    return 'key' in p ? p.key : null;
  };

  it('covers exactly what the conf reads', async () => {
    const dir = tempDir();
    const plain = writeConf(dir, 'PACKAGE_NAME=p\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME[0]=p\nDEST_MODULE_LOCATION[0]=/extra\n', 'plain');
    const perKernel = writeConf(dir, 'PACKAGE_NAME=k\nMAKE="make -C $kernel_source_dir"\n', 'perkernel');
    const patched = writeConf(dir, "PACKAGE_NAME=q\nPATCH[0]=a.patch\nPATCH_MATCH[0]='^6'\n", 'patched');
    const env = writeConf(dir, 'PACKAGE_NAME="$KB_TEST_SUFFIX"\n', 'env');
    const r = new ConfLayoutResolver({ cacheDir: null });
    expect(key(r, ctxFor(plain, K1))).not.toBeNull();
    expect(key(r, ctxFor(plain, K1))).toBe(key(r, ctxFor(plain, K2)));
    expect(key(r, ctxFor(perKernel, K1))).not.toBe(key(r, ctxFor(perKernel, K2)));
    expect(key(r, ctxFor(patched, K1))).not.toBe(key(r, ctxFor(patched, K2)));
    expect(key(r, ctxFor(plain, K1, { directives: ['MAKE=x'] }))).not.toBe(key(r, ctxFor(plain, K1)));
    const a = await withEnv({ KB_TEST_SUFFIX: 'a' }, () => key(new ConfLayoutResolver({ cacheDir: null }), ctxFor(env, K1)));
    const b = await withEnv({ KB_TEST_SUFFIX: 'b' }, () => key(new ConfLayoutResolver({ cacheDir: null }), ctxFor(env, K1)));
    expect(a).not.toBeNull();
    expect(a).not.toBe(b);
    // A value the second expansion would run as code is never remembered.
    expect(await withEnv({ KB_TEST_SUFFIX: '$(id)' }, () => key(new ConfLayoutResolver({ cacheDir: null }), ctxFor(env, K1)))).toBeNull();
    // Nor anything while the environment exports functions or DKMS directives.
    expect(await withEnv({ 'BASH_FUNC_echo%%': '() { :; }' }, () => key(new ConfLayoutResolver({ cacheDir: null }), ctxFor(plain, K1)))).toBeNull();
    expect(await withEnv({ DKMS_DIRECTIVE_X: 'MAKE=y' }, () => key(new ConfLayoutResolver({ cacheDir: null }), ctxFor(plain, K1)))).toBeNull();
  });

  it('sources everything as sourceConf does when the environment holds DKMS directives or functions', async () => {
    const dir = tempDir();
    const p = writeConf(dir, 'PACKAGE_NAME=e\ntrue\nMAKE=m\n', 'envconf');
    const ctxs = [ctxFor(p, K1), ctxFor(p, K2)];
    await withEnv({ DKMS_DIRECTIVE_A: 'CLEAN=from-env', 'BASH_FUNC_true%%': '() { PACKAGE_NAME=from-function; }' }, async () => {
      const stats = { batched: 0, alone: 0 };
      const batch = (await sourceConfs(ctxs, { stats })).map(shape);
      expect(stats).toEqual({ batched: 0, alone: 2 });
      expect(batch).toEqual(await pool(ctxs, 2, single));
      expect(JSON.stringify(batch)).toContain('from-env');
      expect(JSON.stringify(batch)).toContain('from-function');
    });
  });
});

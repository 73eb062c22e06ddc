// A real, minimal out-of-tree module built with the kernel's own build system
// against installed headers, so signing/ELF tests run on genuine .ko files.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export const HELLO_NAME = 'kbhello';
export const HELLO_VERSION = '1.2.3';

const SOURCE = `#include <linux/module.h>
#include <linux/kernel.h>

static int count = 1;
module_param(count, int, 0444);
MODULE_PARM_DESC(count, "how many greetings");

static int __init kbhello_init(void)
{
	pr_info("kbhello: %d\\n", count);
	return 0;
}

static void __exit kbhello_exit(void)
{
	pr_info("kbhello: bye\\n");
}

module_init(kbhello_init);
module_exit(kbhello_exit);
MODULE_LICENSE("GPL");
MODULE_VERSION("${HELLO_VERSION}");
MODULE_DESCRIPTION("kbundle test module");
MODULE_AUTHOR("kbundle tests");
`;

const cache = new Map<string, Promise<string>>();

async function build(kver: string, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${HELLO_NAME}.c`), SOURCE);
  writeFileSync(join(dir, 'Makefile'), `obj-m := ${HELLO_NAME}.o\n`);
  const r = await execa('make', ['-C', `/lib/modules/${kver}/build`, `M=${dir}`, 'modules'], { reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`building ${HELLO_NAME} for ${kver} failed:\n${r.all}`);
  return join(dir, `${HELLO_NAME}.ko`);
}

/**
 * Builds the test module for kernel `kver` and returns the .ko path. Without
 * `dir` the build happens once per kernel per test process in a fresh temp
 * dir; callers that modify the file must copy it first.
 */
export function buildHelloModule(kver: string, dir?: string): Promise<string> {
  if (dir) return build(kver, dir);
  let p = cache.get(kver);
  if (!p) {
    p = build(kver, mkdtempSync(join(tmpdir(), `kbhello-${kver}-`)));
    cache.set(kver, p);
  }
  return p;
}

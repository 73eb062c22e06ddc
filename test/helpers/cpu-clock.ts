import { readFileSync } from 'node:fs';

/**
 * Milliseconds of CPU used by this process and its reaped children (utime, stime, cutime, cstime
 * of /proc/self/stat, proc(5)). The "refuses hostile input quickly" tests measure this instead of
 * wall time: it grows with the work the input causes (a regex blow-up, a bash loop) but not with
 * what other processes on a loaded CI machine do, so the limits stay meaningful and never flake.
 */
export function cpuNow(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the parenthesised command name (which may contain spaces); utime is field 14.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux (sysconf(_SC_CLK_TCK))
}

// One boot of a kernel + initramfs in qemu-system-x86_64 with TCG (software emulation: /dev/kvm
// on these machines is nested and hangs the guest). Hard timeout; the serial console is returned.
import { spawnSync } from 'node:child_process';

export interface Boot {
  console: string;
  status: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

export function bootQemu(vmlinuz: string, initrd: string, timeoutMs = 180_000): Boot {
  const r = spawnSync(
    'qemu-system-x86_64',
    [
      '-accel', 'tcg',
      '-nographic',
      '-no-reboot',
      '-m', '512',
      '-smp', '1',
      '-kernel', vmlinuz,
      '-initrd', initrd,
      // panic=-1 + -no-reboot: a panic ends qemu instead of hanging until the timeout.
      '-append', 'console=ttyS0 panic=-1 loglevel=7 rdinit=/init',
    ],
    { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return { console: `${r.stdout ?? ''}${r.stderr ?? ''}`, status: r.status, signal: r.signal, timedOut: r.error !== undefined || r.signal === 'SIGKILL' };
}

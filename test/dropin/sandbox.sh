#!/usr/bin/env bash
# Runs a command as root inside a throwaway copy of this machine: a private
# mount namespace, an overlay whose lower layer is / and whose upper layer is
# STATE/upper, chrooted. dpkg, the kernel hooks and /usr/sbin/dkms then act on
# the copy; the machine's own /var/lib/dkms, /lib/modules, /usr/src and dpkg
# database are never written. STATE persists between calls, so a test can run
# install -> retry -> purge as separate steps on one copy.
#   sandbox.sh STATE command [args...]
set -euo pipefail
state=$1; shift
mkdir -p "$state/upper" "$state/work" "$state/root"
exec unshare -m --propagation private -- bash -c '
  set -euo pipefail
  s=$1; shift
  mount -t overlay overlay -o "lowerdir=/,upperdir=$s/upper,workdir=$s/work" "$s/root"
  for d in proc sys dev; do mount --rbind "/$d" "$s/root/$d"; done
  mount -t tmpfs tmpfs "$s/root/run"
  exec chroot "$s/root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
' sandbox "$state" "$@"

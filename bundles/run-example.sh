#!/usr/bin/env bash
# `npm run example`: set the machine up, then build and install the example
# hello module for every installed kernel header set into a scratch root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
root=${KBUNDLE_EXAMPLE_ROOT:-/tmp/kbundle-example}
rm -rf "$root"
mkdir -p "$root/usr/src" "$root/var/lib/dkms" "$root/lib/modules" "$root/etc/dkms"
cp -a bundles/hello-1.0 "$root/usr/src/"
args=(--dkmstree "$root/var/lib/dkms" --sourcetree "$root/usr/src" --installtree "$root/lib/modules" --etcdir "$root/etc/dkms")
kernels=()
for b in /lib/modules/*/build; do
  k=$(basename "$(dirname "$b")")
  [ -d "$b/include" ] || continue
  mkdir -p "$root/lib/modules/$k"
  ln -sfn "$b" "$root/lib/modules/$k/build"
  kernels+=(-k "$k")
done
./bin/kbundle generate_mok "${args[@]}"
./bin/kbundle install hello/1.0 "${kernels[@]}" "${args[@]}"
./bin/kbundle status "${args[@]}"
# The bundle side: one reproducible, signed bundle for the same kernels.
SOURCE_DATE_EPOCH=1700000000 ./bin/kbundle bundle build bundles/example.kbundle.yaml -o "$root/hello-1.0.kbundle" --cache-dir "$root/cache"
./bin/kbundle bundle ls "$root/hello-1.0.kbundle" --key bundles/keys/example-bundle.pub
sha256sum "$root/hello-1.0.kbundle"

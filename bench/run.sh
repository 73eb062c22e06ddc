#!/usr/bin/env bash
# `npm run bench`: every benchmark, each printing a markdown table with ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
node bench/core.mjs "$@"
node bench/status-dkms-tree.mjs "$@"
node bench/bundle.mjs "$@"
node bench/installer.mjs
node bench/dropin-packages.mjs "$@"

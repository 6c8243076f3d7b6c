#!/usr/bin/env bash
# The NEON kernel check (test/engine/kernels/neon.test.ts) cross-builds the native addon for arm64 and
# runs the aarch64 SGEMM under qemu-user (about 10 s to install).
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"
need_packages "the NEON kernel check (test/engine/kernels/neon.test.ts)" gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user

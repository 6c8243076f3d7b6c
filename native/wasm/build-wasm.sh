#!/bin/sh
# Rebuilds native/wasm/kernels.wasm (committed, so users need no compiler). Needs Debian's clang and
# lld, and wabt for the safety check (apt-get install clang lld wabt). The module imports the host's memory and must own none of it.
set -eu
cd "$(dirname "$0")"
clang --target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -ffreestanding -fno-builtin-malloc \
  -Wall -Wextra -Wno-unused-parameter \
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all \
  -o kernels.wasm kernels.c
node check-wasm.mjs kernels.wasm

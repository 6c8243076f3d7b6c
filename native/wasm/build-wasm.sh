#!/bin/sh
# Rebuilds the committed kernel modules (users need no compiler). Needs Debian's clang and lld, and
# wabt for the safety check (apt-get install clang lld wabt). Both modules import a memory and own
# none of it:
#   kernels.wasm          imports TensorFlow.js's own (unshared) wasm memory; one thread
#   kernels-threads.wasm  imports the tier's shared memory; the same code with atomic task counters,
#                         run by worker threads (max 4 GiB, the wasm32 limit; the JS side picks less)
set -eu
cd "$(dirname "$0")"
FLAGS="--target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -ffreestanding -fno-builtin-malloc
  -Wall -Wextra -Wno-unused-parameter -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all"
# shellcheck disable=SC2086
clang $FLAGS -o kernels.wasm kernels.c
# shellcheck disable=SC2086
clang $FLAGS -matomics -Wl,--shared-memory -Wl,--max-memory=4294967296 -o kernels-threads.wasm kernels.c
node check-wasm.mjs kernels.wasm
node check-wasm.mjs kernels-threads.wasm

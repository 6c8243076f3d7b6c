// Loads the compiled N-API addon (native/build/Release/vswin_kernels.node). A missing or broken
// build is an expected condition (no compiler at install time), so it is reported, not thrown.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { KernelProvider } from './provider.ts';

export const NATIVE_ADDON_PATH = fileURLToPath(new URL('../../../native/build/Release/vswin_kernels.node', import.meta.url));

export type NativeLoad = { ok: true; provider: KernelProvider; path: string } | { ok: false; reason: string };

let cached: NativeLoad | null = null;

export function loadNativeKernels(): NativeLoad {
  if (cached) return cached;
  if (!existsSync(NATIVE_ADDON_PATH)) {
    cached = { ok: false, reason: `native addon not built (${NATIVE_ADDON_PATH} is missing; run "node scripts/build-native.mjs", which needs python3, make and a C compiler)` };
    return cached;
  }
  try {
    const require = createRequire(import.meta.url);
    const provider = require(NATIVE_ADDON_PATH) as KernelProvider;
    cached = { ok: true, provider, path: NATIVE_ADDON_PATH };
  } catch (error) {
    cached = { ok: false, reason: `native addon failed to load: ${(error as Error).message.split('\n')[0]}` };
  }
  return cached;
}

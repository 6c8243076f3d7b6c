// Loads the compiled N-API addon (native/build/Release/vswin_kernels.node). A missing or broken
// build is an expected condition (no compiler at install time), so it is reported, not thrown.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { KernelProvider } from './provider.ts';

export const NATIVE_ADDON_PATH = fileURLToPath(new URL('../../../native/build/Release/vswin_kernels.node', import.meta.url));

export type NativeLoad = { ok: true; provider: Required<KernelProvider>; path: string } | { ok: false; reason: string };

/** Overrides the addon's location (a prebuilt binary shipped elsewhere, or tests of the fallback). */
export const NATIVE_ADDON_ENV = 'VSWIN_NATIVE_ADDON';

const cache = new Map<string, NativeLoad>();

export function loadNativeKernels(path: string = process.env[NATIVE_ADDON_ENV] || NATIVE_ADDON_PATH): NativeLoad {
  const known = cache.get(path);
  if (known) return known;
  let result: NativeLoad;
  if (!existsSync(path)) {
    result = { ok: false, reason: `native addon not built (${path} is missing; run "node scripts/build-native.mjs", which needs python3, make and a C compiler)` };
  } else {
    try {
      const require = createRequire(import.meta.url);
      result = { ok: true, provider: require(path) as Required<KernelProvider>, path };
    } catch (error) {
      result = { ok: false, reason: `native addon failed to load: ${(error as Error).message.split('\n')[0]}` };
    }
  }
  cache.set(path, result);
  return result;
}

// Loads the compiled N-API addon. A missing or broken build is an expected condition (no compiler
// at install time), so it is reported, not thrown. Where it is looked for, first found wins:
//   1. VSWIN_NATIVE_ADDON, when set (the only place then);
//   2. the packaged desktop app's resources: <resources>/native/vswin_kernels.node (electron-builder's
//      extraResources), then <resources>/app.asar.unpacked/native/build/Release/vswin_kernels.node.
//      <resources> is process.resourcesPath in Electron, or the folder holding app.asar when this
//      file runs from inside one (a child process of the packaged app);
//   3. the development build, native/build/Release/vswin_kernels.node (scripts/build-native.mjs).
// N-API is ABI-stable, so the binary built for Node at install time also loads in Electron.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KernelProvider } from './provider.ts';

export const NATIVE_ADDON_FILE = 'vswin_kernels.node';
export const NATIVE_ADDON_PATH = fileURLToPath(new URL(`../../../native/build/Release/${NATIVE_ADDON_FILE}`, import.meta.url));

export type NativeLoad = { ok: true; provider: Required<KernelProvider>; path: string } | { ok: false; reason: string };

/** Overrides the addon's location (a prebuilt binary shipped elsewhere, or tests of the fallback). */
export const NATIVE_ADDON_ENV = 'VSWIN_NATIVE_ADDON';

export interface AddonSearch {
  /** VSWIN_NATIVE_ADDON's value. */
  override?: string;
  /** Electron's process.resourcesPath (undefined in plain Node). */
  resourcesPath?: string;
  /** Path of this module, to find the resources folder when it runs from inside app.asar. */
  modulePath?: string;
  /** The development build. */
  devPath?: string;
}

/** The resources folder of a packaged app: Electron's own, or the folder that holds app.asar. */
function resourcesFolder(search: AddonSearch): string | null {
  if (search.resourcesPath) return search.resourcesPath;
  const match = search.modulePath ? /^(.*)[\\/]app\.asar(\.unpacked)?[\\/]/.exec(search.modulePath) : null;
  return match ? match[1] : null;
}

/** The places the addon is looked for, in order (see the top of this file). */
export function nativeAddonCandidates(search: AddonSearch): string[] {
  if (search.override) return [search.override];
  const candidates: string[] = [];
  const resources = resourcesFolder(search);
  if (resources) {
    candidates.push(
      join(resources, 'native', NATIVE_ADDON_FILE),
      join(resources, 'app.asar.unpacked', 'native', 'build', 'Release', NATIVE_ADDON_FILE),
    );
  }
  if (search.devPath) candidates.push(search.devPath);
  return candidates;
}

function processSearch(): AddonSearch {
  return {
    override: process.env[NATIVE_ADDON_ENV] || undefined,
    resourcesPath: (process as { resourcesPath?: string }).resourcesPath || undefined,
    modulePath: fileURLToPath(import.meta.url),
    devPath: NATIVE_ADDON_PATH,
  };
}

const cache = new Map<string, NativeLoad>();

/** Loads the addon from `path`, or from the first of the usual places that holds it. */
export function loadNativeKernels(path?: string): NativeLoad {
  const candidates = path ? [path] : nativeAddonCandidates(processSearch());
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) {
    const where = candidates.length === 1 ? `${candidates[0]} is missing` : `none of ${candidates.join(', ')} exists`;
    return {
      ok: false,
      reason: `native addon not built (${where}; run "node scripts/build-native.mjs", which needs python3, make and a C compiler)`,
    };
  }
  const known = cache.get(found);
  if (known) return known;
  let result: NativeLoad;
  try {
    const require = createRequire(import.meta.url);
    result = { ok: true, provider: require(found) as Required<KernelProvider>, path: found };
  } catch (error) {
    result = { ok: false, reason: `native addon failed to load from ${found}: ${(error as Error).message.split('\n')[0]}` };
  }
  cache.set(found, result);
  return result;
}

// Where the native addon is looked for in the packaged desktop app, and that electron-builder.yml
// ships it there. electron-builder itself cannot run here (no network, no Electron binary), so the
// lookup is tested with a fake resources folder.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  loadNativeKernels,
  NATIVE_ADDON_ENV,
  NATIVE_ADDON_FILE,
  NATIVE_ADDON_PATH,
  nativeAddonCandidates,
} from '../../../core/engine/kernels/native-addon.ts';

describe('native addon lookup', () => {
  it('an explicit VSWIN_NATIVE_ADDON is the only place looked at', () => {
    expect(nativeAddonCandidates({ override: '/opt/k.node', resourcesPath: '/r', devPath: '/dev/k.node' })).toEqual([
      '/opt/k.node',
    ]);
  });

  it('in Electron, the resources folder (extraResources, then asar-unpacked) comes before the dev build', () => {
    expect(
      nativeAddonCandidates({
        resourcesPath: '/app/resources',
        modulePath: '/src/core/engine/kernels/native-addon.ts',
        devPath: '/src/native/build/Release/vswin_kernels.node',
      }),
    ).toEqual([
      '/app/resources/native/vswin_kernels.node',
      '/app/resources/app.asar.unpacked/native/build/Release/vswin_kernels.node',
      '/src/native/build/Release/vswin_kernels.node',
    ]);
  });

  it('a process running this module from inside app.asar finds the resources folder without Electron', () => {
    const candidates = nativeAddonCandidates({
      modulePath: '/opt/Workbench/resources/app.asar/core/engine/kernels/native-addon.ts',
      devPath: '/x/dev.node',
    });
    expect(candidates).toEqual([
      '/opt/Workbench/resources/native/vswin_kernels.node',
      '/opt/Workbench/resources/app.asar.unpacked/native/build/Release/vswin_kernels.node',
      '/x/dev.node',
    ]);
    expect(
      nativeAddonCandidates({ modulePath: '/home/me/src/core/engine/kernels/native-addon.ts', devPath: '/x/dev.node' }),
    ).toEqual(['/x/dev.node']);
  });

  describe('with a fake resources folder', () => {
    let resources: string;
    const saved = {
      resourcesPath: (process as { resourcesPath?: string }).resourcesPath,
      override: process.env[NATIVE_ADDON_ENV],
    };
    beforeEach(() => {
      resources = mkdtempSync(join(tmpdir(), 'vswin-resources-'));
      mkdirSync(join(resources, 'native'));
      (process as { resourcesPath?: string }).resourcesPath = resources;
      delete process.env[NATIVE_ADDON_ENV];
    });
    afterEach(() => {
      (process as { resourcesPath?: string }).resourcesPath = saved.resourcesPath;
      if (saved.override === undefined) delete process.env[NATIVE_ADDON_ENV];
      else process.env[NATIVE_ADDON_ENV] = saved.override;
      rmSync(resources, { recursive: true, force: true });
    });

    it('the packaged binary is the one loaded (a broken one is reported with its path, not skipped)', () => {
      const packaged = join(resources, 'native', NATIVE_ADDON_FILE);
      writeFileSync(packaged, 'not a shared library');
      const broken = loadNativeKernels();
      expect(broken.ok).toBe(false);
      expect(broken.ok ? '' : broken.reason).toContain(`native addon failed to load from ${packaged}:`);
    });

    it('a working packaged binary loads from the resources folder', (context) => {
      const built = loadNativeKernels(NATIVE_ADDON_PATH);
      if (!built.ok) return context.skip(); // no C compiler here: nothing to package
      const packaged = join(resources, 'native', NATIVE_ADDON_FILE);
      copyFileSync(NATIVE_ADDON_PATH, packaged);
      const load = loadNativeKernels();
      expect(load.ok ? load.path : load.reason).toBe(packaged);
    });

    it('without a packaged binary the dev build is used, and when nothing exists every place is named', () => {
      const load = loadNativeKernels();
      if (load.ok) expect(load.path).toBe(NATIVE_ADDON_PATH);
      else
        expect(load.reason).toContain(
          `none of ${join(resources, 'native', NATIVE_ADDON_FILE)}, ${join(resources, 'app.asar.unpacked')}`,
        );
    });
  });
});

describe('packaging config', () => {
  it('electron-builder ships the built addon where the lookup expects it', () => {
    const config = readFileSync(fileURLToPath(new URL('../../../electron-builder.yml', import.meta.url)), 'utf8');
    const entry = /extraResources:\s*\n\s*-\s*from:\s*(\S+)\s*\n\s*to:\s*(\S+)/.exec(config);
    expect(entry?.slice(1)).toEqual(['native/build/Release/vswin_kernels.node', 'native/vswin_kernels.node']);
    const [first] = nativeAddonCandidates({ resourcesPath: '/resources', devPath: '/dev.node' });
    expect(first).toBe(join('/resources', entry![2]));
  });

  it('a packaging build (VSWIN_REQUIRE_NATIVE=1) fails when the addon cannot be built', () => {
    const script = fileURLToPath(new URL('../../../scripts/build-native.mjs', import.meta.url));
    const result = spawnSync(process.execPath, [script], {
      env: { ...process.env, CC: '/nonexistent/cc', VSWIN_REQUIRE_NATIVE: '1' },
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('VSWIN_REQUIRE_NATIVE=1: the packaged app must ship the addon, so this is an error');
  });
});

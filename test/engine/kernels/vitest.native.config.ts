// The project's Vitest config plus a setup file that installs the fast kernels whenever a backend
// starts, so any suite runs on a kernel tier unchanged:
//   VSWIN_KERNELS=native npx vitest run --config test/engine/kernels/vitest.native.config.ts test/model
import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../../vitest.config.ts';

export default mergeConfig(base, defineConfig({
  root: fileURLToPath(new URL('../../..', import.meta.url)),
  test: { setupFiles: [fileURLToPath(new URL('./native-setup.ts', import.meta.url))] },
}));

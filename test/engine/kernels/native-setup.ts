// Vitest setup file that installs the fast kernels whenever a backend starts, so any suite can be
// run on a kernel tier without touching it:
//   VSWIN_KERNELS=native npx vitest run --config test/engine/kernels/vitest.native.config.ts test/model
import { registerFastKernelHook } from '../../../core/engine/kernels/index.ts';

registerFastKernelHook();

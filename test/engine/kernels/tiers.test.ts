import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../core/engine/backend.ts';
import {
  fastKernelStatus,
  installFastKernels,
  nativeProvider,
  parseKernelRequest,
  uninstallFastKernels,
} from '../../../core/engine/kernels/index.ts';
import { loadNativeKernels } from '../../../core/engine/kernels/native-addon.ts';
import { wasmThreadRequest } from '../../../core/engine/kernels/wasm-simd.ts';
import { tf } from '../../../core/engine/tf.ts';
import { NATIVE_ISAS, seeded } from './compare.ts';

describe('kernel tier choice', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });
  afterAll(() => uninstallFastKernels());

  it('the native addon is built wherever a C compiler is present, else the reason is given', () => {
    const load = loadNativeKernels();
    const hasCompiler = spawnSync(process.env.CC || 'cc', ['--version'], { stdio: 'ignore' }).status === 0;
    if (hasCompiler) expect(load.ok ? 'loaded' : load.reason).toBe('loaded');
    else expect(load.ok ? 'loaded' : load.reason).toMatch(/native addon (not built|failed to load)/);
  });

  it('parses the VSWIN_KERNELS values and names the bad one', () => {
    expect(parseKernelRequest(undefined, 'VSWIN_KERNELS')).toBe('auto');
    expect(parseKernelRequest('native', 'VSWIN_KERNELS')).toBe('native');
    expect(() => parseKernelRequest('fast', 'VSWIN_KERNELS')).toThrow(
      /VSWIN_KERNELS: unknown kernel tier "fast"; expected one of auto, native, wasm, stock/,
    );
  });

  it('leaves other backends alone, keeps stock kernels on request, and auto picks native when it loads', () => {
    expect(installFastKernels({ name: 'cpu' }, 'native')).toMatchObject({
      tier: 'stock',
      reason: 'the cpu backend runs its own kernels',
      kernels: [],
    });
    expect(installFastKernels({ name: 'wasm' }, 'stock')).toMatchObject({
      tier: 'stock',
      reason: 'requested with VSWIN_KERNELS=stock',
    });
    const auto = installFastKernels({ name: 'wasm' }, 'auto');
    if (nativeProvider()) expect(auto).toMatchObject({ tier: 'native', reason: 'auto: the native addon is built and loads' });
    else expect(auto).toMatchObject({ tier: 'stock', reason: expect.stringMatching(/^auto: native addon/) });
    // The wasm tier runs on as many threads as VSWIN_WASM_THREADS or the machine offers.
    expect(installFastKernels({ name: 'wasm' }, 'wasm')).toMatchObject({
      tier: 'wasm',
      isa: 'wasm-simd128',
      threads: wasmThreadRequest(),
      reason: 'requested with VSWIN_KERNELS=wasm',
    });
  });

  it('without the addon, auto falls back to the WebAssembly tier and says why, and an explicit native request fails', () => {
    const saved = process.env.VSWIN_NATIVE_ADDON;
    process.env.VSWIN_NATIVE_ADDON = '/nonexistent/vswin_kernels.node';
    try {
      const status = installFastKernels({ name: 'wasm' }, 'auto');
      expect(status.tier).toBe('wasm');
      expect(status.reason).toMatch(
        /^auto: native addon not built \(\/nonexistent\/vswin_kernels.node is missing; run "node scripts\/build-native.mjs".*so the WebAssembly SIMD tier runs$/,
      );
      expect(() => installFastKernels({ name: 'wasm' }, 'native')).toThrow(/VSWIN_KERNELS=native: native addon not built/);
    } finally {
      if (saved === undefined) delete process.env.VSWIN_NATIVE_ADDON;
      else process.env.VSWIN_NATIVE_ADDON = saved;
    }
  });

  it.skipIf(!nativeProvider())('native replaces the kernels by name and uninstalling restores the originals', () => {
    uninstallFastKernels(); // the backend hook may have installed a tier already
    const original = tf.getKernel('Transpose', 'wasm')!.kernelFunc;
    const status = installFastKernels({ name: 'wasm' }, 'native');
    expect(status.tier).toBe('native');
    expect(NATIVE_ISAS).toContain(status.isa);
    expect(status.threads).toBeGreaterThanOrEqual(1);
    expect(status.kernels).toEqual(
      expect.arrayContaining([
        'BatchMatMul',
        '_FusedMatMul',
        'Transpose',
        'Slice',
        'StridedSlice',
        'GatherV2',
        'Identity',
        'PadV2',
        'SplitV',
        'Add',
        'Sub',
        'Multiply',
        'RealDiv',
        'Erf',
        'Softmax',
      ]),
    );
    expect(tf.getKernel('Transpose', 'wasm')!.kernelFunc).not.toBe(original);
    // Installing twice must not capture our own kernel as the "original".
    installFastKernels({ name: 'wasm' }, 'native');
    uninstallFastKernels();
    expect(tf.getKernel('Transpose', 'wasm')!.kernelFunc).toBe(original);
    expect(fastKernelStatus().tier).toBe('stock');
  });

  it.each(['native', 'wasm'])('no tensor or heap block leaks over 30 training-like steps on the %s tier', async (tier) => {
    if (tier === 'native' && !nativeProvider()) return expect(loadNativeKernels().ok).toBe(false);
    await tf.setBackend('wasm');
    installFastKernels({ name: 'wasm' }, tier);
    const weight = tf.variable(tf.tensor(seeded(24 * 72, 1), [24, 72]));
    const bias = tf.variable(tf.zeros([72]));
    const input = tf.tensor(seeded(2 * 49 * 24, 2), [2, 49, 24]);
    const mask = tf
      .tensor(seeded(49 * 49, 3), [1, 49, 49])
      .greater(0)
      .toFloat()
      .mul(-100);
    const step = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const qkv = tf.fused
            .matMul({ a: input.reshape([98, 24]), b: weight, bias })
            .reshape([2, 49, 3, 3, 8])
            .transpose([2, 0, 3, 1, 4]);
          const [q, k, v] = [0, 1, 2].map((index) => qkv.slice([index, 0, 0, 0, 0], [1, 2, 3, 49, 8]).reshape([6, 49, 8]));
          const attention = tf.matMul(q, k, false, true).div(Math.sqrt(8)).add(mask).softmax();
          const out = tf.matMul(attention, v);
          return out
            .mul(0.5)
            .mul(tf.erf(out.div(Math.SQRT2)).add(1))
            .sub(0.1)
            .square()
            .mean();
        });
        weight.assign(weight.sub(grads[weight.name].mul(0.01)));
        bias.assign(bias.sub(grads[bias.name].mul(0.01)));
        return value.dataSync()[0];
      });
    step();
    const tensorsBefore = tf.memory().numTensors;
    const dataBefore = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    for (let i = 0; i < 30; i++) step();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(dataBefore);
    tf.dispose([weight, bias, input, mask]);
  });
});

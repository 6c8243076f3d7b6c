// The measured fp32 peak bench:model divides by: the FMA loop of native/src/peak.c does the work it
// reports, on every pool thread, in the instruction set the matrix kernels use.
import { describe, expect, it } from 'vitest';
import { loadNativeKernels } from '../../../core/engine/kernels/native-addon.ts';

const native = loadNativeKernels();
type Peak = (iterations: number) => { flops: number; seconds: number };

describe.skipIf(!native.ok)('native fmaPeak', () => {
  it('counts 2 flops per lane per FMA over 16 chains on each thread, and rejects a bad count', () => {
    if (!native.ok) return;
    const fmaPeak = (native.provider as unknown as { fmaPeak: Peak }).fmaPeak;
    const { isa, threads } = native.provider.info() as { isa: string; threads: number };
    const lanes = isa === 'avx512' ? 16 : isa === 'avx2' ? 8 : 0;
    const perIteration = lanes ? 2 * lanes * 16 : 2 * 8;
    const result = fmaPeak(1000);
    expect(result.flops).toBe(perIteration * 1000 * threads);
    expect(result.seconds).toBeGreaterThan(0);
    expect(() => fmaPeak(0)).toThrow('vswin native fmaPeak: expected a positive iteration count');
  });
});

// Runs the same computation on the pure-JS cpu backend (the reference) and on the wasm backend
// with the fast kernels installed, and compares every output element.
import { expect } from 'vitest';
import { initBackend } from '../../../core/engine/backend.ts';
import { installFastKernels, nativeProvider } from '../../../core/engine/kernels/index.ts';
import { tf } from '../../../core/engine/tf.ts';

/** The fast tiers every kernel test runs on; native only where the addon is built. */
export const TIERS = ['native', 'wasm'] as const;
export type Tier = (typeof TIERS)[number];
/** The native tier's matrix micro-kernel families on this architecture, best first. */
export const NATIVE_ISAS: readonly string[] = process.arch === 'arm64' ? ['neon', 'portable'] : ['avx512', 'avx2', 'portable'];
export const tierMissing = (tier: Tier): boolean => tier === 'native' && !nativeProvider();

export async function useTier(tier: Tier): Promise<void> {
  await initBackend('wasm');
  installFastKernels({ name: 'wasm' }, tier);
}

/** Deterministic values in [-1, 1) (a 32-bit LCG), so failures reproduce. */
export function seeded(size: number, seed: number): Float32Array {
  const values = new Float32Array(size);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = state / 2 ** 31 - 1;
  }
  return values;
}

export type Computation = () => tf.Tensor | tf.Tensor[];

async function runOn(
  backend: 'cpu' | 'wasm',
  computation: Computation,
): Promise<{ shape: number[]; values: Float32Array | Int32Array }[]> {
  await tf.setBackend(backend);
  const outputs = tf.tidy(computation);
  const list = Array.isArray(outputs) ? outputs : [outputs];
  const results = await Promise.all(
    list.map(async (tensor) => ({ shape: tensor.shape, values: (await tensor.data()) as Float32Array | Int32Array })),
  );
  tf.dispose(list);
  return results;
}

/**
 * Asserts the fast (wasm) results equal the cpu reference within atol + rtol * |reference|.
 * `fastComputation` (default: the same) is what runs on wasm, e.g. a fused op against its composition.
 */
export async function expectSameOnBoth(
  computation: Computation,
  tolerance = { atol: 1e-5, rtol: 1e-5 },
  label = '',
  fastComputation: Computation = computation,
): Promise<void> {
  const reference = await runOn('cpu', computation);
  const fast = await runOn('wasm', fastComputation);
  expect(fast.length, `${label}: output count`).toBe(reference.length);
  reference.forEach((expected, index) => {
    const actual = fast[index];
    expect(actual.shape, `${label}: shape of output ${index}`).toEqual(expected.shape);
    let worst = 0;
    let worstAt = -1;
    for (let i = 0; i < expected.values.length; i++) {
      const want = expected.values[i];
      const got = actual.values[i];
      if (Number.isNaN(want) && Number.isNaN(got)) continue;
      const excess = Math.abs(got - want) - (tolerance.atol + tolerance.rtol * Math.abs(want));
      if (!(excess <= worst)) {
        worst = Number.isNaN(excess) ? Infinity : excess;
        worstAt = i;
      }
    }
    if (worstAt >= 0) {
      expect.fail(
        `${label}: output ${index} element ${worstAt} is ${actual.values[worstAt]}, the cpu backend gives ${expected.values[worstAt]} (tolerance ${tolerance.atol} + ${tolerance.rtol}*|x|)`,
      );
    }
  });
}

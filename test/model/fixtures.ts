// Access to the parity fixtures produced by the official PyTorch code (../shared/fixtures/parity).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { readSafetensors } from '../../core/model/weights/safetensors.ts';
import type { TensorMap } from '../../core/model/weights/types.ts';
import type { Tensor } from '../../core/engine/tf.ts';

// ../shared beside the checkout (VSWIN_PARITY_FIXTURES names another folder).
export const FIXTURES =
  process.env.VSWIN_PARITY_FIXTURES ?? fileURLToPath(new URL('../../../shared/fixtures/parity/', import.meta.url));

if (!existsSync(`${FIXTURES}manifest.json`)) {
  throw new Error(`parity fixtures not found at ${FIXTURES}: the checkout needs ../shared beside it`);
}

export const manifest = JSON.parse(readFileSync(`${FIXTURES}manifest.json`, 'utf8'));

const cache = new Map<string, TensorMap>();
export function fixture(file: string): TensorMap {
  let tensors = cache.get(file);
  if (!tensors) {
    tensors = readSafetensors(`${FIXTURES}${file}`).tensors;
    cache.set(file, tensors);
  }
  return tensors;
}

export function fixtureTensor(file: string, key: string) {
  const t = fixture(file).get(key);
  if (!t) throw new Error(`${file} has no tensor "${key}"`);
  return t;
}

/** Largest |got - ref| / (atol + rtol |ref|); <= 1 means within tolerance everywhere. */
export function toleranceRatio(got: ArrayLike<number>, ref: ArrayLike<number>, atol: number, rtol: number): number {
  expect(got.length).toBe(ref.length);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const ratio = Math.abs(got[i] - ref[i]) / (atol + rtol * Math.abs(ref[i]));
    if (!(ratio <= worst)) worst = Number.isNaN(ratio) ? Infinity : ratio;
  }
  return worst;
}

/** Asserts a tensor equals a fixture tensor within atol + rtol |ref| elementwise, shapes included. */
export function expectCloseTo(
  name: string,
  got: Tensor | { shape: number[]; data: ArrayLike<number> },
  file: string,
  key: string,
  atol = 1e-4,
  rtol = 1e-4,
): void {
  const ref = fixtureTensor(file, key);
  const data = 'dataSync' in got ? got.dataSync() : got.data;
  expect([...got.shape], `${name}: shape`).toEqual(ref.shape);
  const ratio = toleranceRatio(data as ArrayLike<number>, ref.data as ArrayLike<number>, atol, rtol);
  expect(ratio, `${name}: worst error / tolerance`).toBeLessThanOrEqual(1);
}

/** expectCloseTo after an asynchronous read, for every backend (webgpu has no synchronous read in Node). */
export async function expectReadCloseTo(
  name: string,
  got: Tensor,
  file: string,
  key: string,
  atol = 1e-4,
  rtol = 1e-4,
): Promise<void> {
  expectCloseTo(name, { shape: [...got.shape], data: await got.data() }, file, key, atol, rtol);
}

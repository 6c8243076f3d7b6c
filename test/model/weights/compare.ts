// Comparison helpers for weight tests: counting is much faster than expect().toEqual on large arrays.
import type { HostTensor } from '../../../core/model/weights/types.ts';

/** Number of elements whose bit patterns differ (NaN payloads and -0 included); -1 if the shapes differ. */
export function bitDifferences(a: HostTensor, b: HostTensor): number {
  if (a.shape.length !== b.shape.length || a.shape.some((size, i) => size !== b.shape[i]) || a.data.length !== b.data.length)
    return -1;
  const width = a.data.BYTES_PER_ELEMENT;
  if (width !== b.data.BYTES_PER_ELEMENT) return -1;
  const left = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const right = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  let differences = 0;
  for (let i = 0; i < a.data.length; i++) {
    for (let byte = 0; byte < width; byte++) {
      if (left[i * width + byte] !== right[i * width + byte]) {
        differences++;
        break;
      }
    }
  }
  return differences;
}

/** Largest |a - b| over two float tensors of the same shape. */
export function maxAbsDifference(a: HostTensor, b: HostTensor): number {
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
  return worst;
}

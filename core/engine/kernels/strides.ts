// Shape arithmetic shared by the kernels: contiguous strides, broadcast strides, and merging of
// dimensions that are adjacent in memory, so a rank-6 window transpose often runs as rank 3.

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = step;
    step *= shape[d];
  }
  return strides;
}

export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const extent of shape) size *= extent;
  return size;
}

/** Strides of `shape` read as if broadcast to `outShape` (0 along broadcast dimensions). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const padded = new Array<number>(outShape.length - shape.length).fill(1).concat(shape);
  const own = contiguousStrides(padded);
  return padded.map((extent, d) => (extent === 1 && outShape[d] !== 1 ? 0 : own[d]));
}

export interface StridedWalk {
  shape: number[];
  /** One stride list per operand, all over `shape`. */
  strides: number[][];
}

/**
 * Drops size-1 dimensions and merges neighbours d, d+1 whenever every operand steps through them
 * as one longer dimension (stride[d] == stride[d+1] * shape[d+1]). The walk visits the same
 * elements in the same order, so a contiguous output is unaffected.
 */
export function simplifyWalk(shape: readonly number[], strides: readonly (readonly number[])[]): StridedWalk {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    const mergeable = last >= 0 && strides.every((own, operand) => outStrides[operand][last] === own[d] * shape[d]);
    if (mergeable) {
      outShape[last] *= shape[d];
      strides.forEach((own, operand) => {
        outStrides[operand][last] = own[d];
      });
    } else {
      outShape.push(shape[d]);
      strides.forEach((own, operand) => outStrides[operand].push(own[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** True when every value fits the int32 parameter block the providers read. */
export function fitsInt32(values: readonly number[]): boolean {
  return values.every((value) => Number.isInteger(value) && value <= 0x7fffffff && value >= -0x80000000);
}

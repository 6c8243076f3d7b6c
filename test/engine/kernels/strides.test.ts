import { describe, expect, it } from 'vitest';
import { broadcastStrides, contiguousStrides, fitsInt32, simplifyWalk } from '../../../core/engine/kernels/strides.ts';

describe('stride arithmetic', () => {
  it('contiguous and broadcast strides', () => {
    expect(contiguousStrides([2, 3, 4])).toEqual([12, 4, 1]);
    expect(broadcastStrides([3, 1], [2, 3, 4])).toEqual([0, 1, 0]);
    expect(broadcastStrides([], [5])).toEqual([0]);
  });

  it('merges dimensions adjacent in every operand and drops size-1 ones', () => {
    // A window-partition transpose [2, 3, 4, 5] -> perm [0, 2, 1, 3]: nothing merges but the walk is exact.
    expect(simplifyWalk([2, 4, 3, 5], [[60, 5, 20, 1]])).toEqual({ shape: [2, 4, 3, 5], strides: [[60, 5, 20, 1]] });
    // A contiguous copy collapses to one dimension.
    expect(simplifyWalk([2, 3, 4], [[12, 4, 1]])).toEqual({ shape: [24], strides: [[1]] });
    // The attention-mask broadcast: [B, nW, nH, N*N] + [1, nW, 1, N*N].
    expect(
      simplifyWalk(
        [2, 4, 3, 9],
        [
          [108, 27, 9, 1],
          [0, 9, 0, 1],
        ],
      ),
    ).toEqual({
      shape: [2, 4, 3, 9],
      strides: [
        [108, 27, 9, 1],
        [0, 9, 0, 1],
      ],
    });
    // The layer-norm [..., 1] broadcast merges the leading dims of both operands.
    expect(
      simplifyWalk(
        [2, 5, 7],
        [
          [35, 7, 1],
          [5, 1, 0],
        ],
      ),
    ).toEqual({
      shape: [10, 7],
      strides: [
        [7, 1],
        [1, 0],
      ],
    });
    expect(simplifyWalk([1, 1], [[1, 1]])).toEqual({ shape: [], strides: [[]] });
  });

  it('int32 range check for the parameter block', () => {
    expect(fitsInt32([0, -5, 2 ** 31 - 1])).toBe(true);
    expect(fitsInt32([2 ** 31])).toBe(false);
    expect(fitsInt32([1.5])).toBe(false);
  });
});

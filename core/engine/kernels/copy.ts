// Transpose, Slice and StridedSlice as one strided copy (the output is contiguous and each of its
// dimensions steps through the input with some stride), and GatherV2 as row copies. Stock wasm Transpose aborts at rank 7
// and its Slice copies the whole input above rank 4; here any rank works once merged to <= 8.
import { tf } from '../tf.ts';
import { MAX_RANK, type KernelProvider } from './provider.ts';
import { contiguousStrides, fitsInt32, simplifyWalk, sizeOf } from './strides.ts';
import {
  wasmBackendOf,
  type KernelArgs,
  type KernelContext,
  type KernelFunction,
  type KernelResult,
  type TensorInfo,
} from './kernel-types.ts';

const COPYABLE = new Set(['float32', 'int32']);

/** Copies x[offset + sum(i_d * strides[d])] into a new tensor of `outShape` (walked over `walkShape`). */
function stridedCopy(
  provider: KernelProvider,
  args: KernelArgs,
  x: TensorInfo,
  outShape: number[],
  walkShape: number[],
  strides: number[],
  offset: number,
  context: KernelContext,
): KernelResult {
  const walk = simplifyWalk(walkShape, [strides]);
  const rank = walk.shape.length;
  const params = [rank, offset, ...walk.shape, ...walk.strides[0]];
  if (rank > MAX_RANK || !fitsInt32(params) || !fitsInt32([sizeOf(x.shape)])) return context.original(args);
  const backend = wasmBackendOf(args);
  const out = backend.makeOutput(outShape, x.dtype);
  if (sizeOf(outShape) === 0) return out;
  const input = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const output = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  provider.stridedCopy(input, output, Int32Array.from(params));
  return out;
}

export function transposeKernel(provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { perm } = args.attrs as { perm: number[] };
    if (!COPYABLE.has(x.dtype) || perm.length !== x.shape.length) return context.original(args);
    const inStrides = contiguousStrides(x.shape);
    const outShape = perm.map((axis) => x.shape[axis]);
    return stridedCopy(
      provider,
      args,
      x,
      outShape,
      outShape,
      perm.map((axis) => inStrides[axis]),
      0,
      context,
    );
  };
}

export function sliceKernel(provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    if (!COPYABLE.has(x.dtype)) return context.original(args);
    const [start, extent] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    tf.slice_util.assertParamsValid(x as tf.Tensor, start, extent);
    const strides = contiguousStrides(x.shape);
    const offset = start.reduce((sum, index, d) => sum + index * strides[d], 0);
    return stridedCopy(provider, args, x, extent, extent, strides, offset, context);
  };
}

export function stridedSliceKernel(provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const attrs = args.attrs as {
      begin: number[];
      end: number[];
      strides: number[];
      beginMask: number;
      endMask: number;
      ellipsisMask: number;
      newAxisMask: number;
      shrinkAxisMask: number;
    };
    if (!COPYABLE.has(x.dtype)) return context.original(args);
    const info = tf.slice_util.sliceInfo(
      x.shape,
      attrs.begin,
      attrs.end,
      attrs.strides,
      attrs.beginMask,
      attrs.endMask,
      attrs.ellipsisMask,
      attrs.newAxisMask,
      attrs.shrinkAxisMask,
    );
    const walkShape =
      info.isSimpleSlice || info.sliceDim0
        ? tf.slice_util.computeOutShape(info.begin, info.end, info.strides).map((extent) => Math.max(0, extent))
        : info.finalShapeSparse;
    if (walkShape.length !== x.shape.length) return context.original(args);
    const inStrides = contiguousStrides(x.shape);
    const offset = info.begin.reduce((sum, index, d) => sum + index * inStrides[d], 0);
    const strides = inStrides.map((stride, d) => stride * info.strides[d]);
    if (sizeOf(walkShape) !== sizeOf(info.finalShape)) return context.original(args);
    return stridedCopy(provider, args, x, info.finalShape, walkShape, strides, offset, context);
  };
}

export function gatherKernel(provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims?: number };
    if (!COPYABLE.has(x.dtype) || indices.dtype !== 'int32') return context.original(args);
    const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
    const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(
      x as tf.Tensor,
      indices as tf.Tensor,
      parsedAxis,
      batchDims ?? 0,
    );
    const count = sizeOf(indices.shape) / Math.max(info.batchSize, 1);
    const params = [info.batchSize, info.outerSize, info.dimSize, info.sliceSize, count];
    if (!fitsInt32(params) || !fitsInt32([sizeOf(x.shape), sizeOf(info.outputShape)])) return context.original(args);
    const backend = wasmBackendOf(args);
    const out = backend.makeOutput(info.outputShape, x.dtype);
    const bad = provider.gather!(
      backend.typedArrayFromHeap(x) as Float32Array | Int32Array,
      backend.typedArrayFromHeap(indices) as Int32Array,
      backend.typedArrayFromHeap(out) as Float32Array | Int32Array,
      Int32Array.from(params),
    );
    if (bad >= 0) {
      const value = (backend.typedArrayFromHeap(indices) as Int32Array)[bad];
      backend.disposeData(out.dataId);
      throw new Error(`GatherV2: the index value ${value} is not in [0, ${info.dimSize - 1}]`);
    }
    return out;
  };
}

/**
 * Identity (tf.clone, the gradient tape's copies) shares the input's data, as Reshape and the cpu
 * backend's Identity do: tensors are immutable, and stock wasm copies every byte instead.
 */
export function identityKernel(_provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return context.original(args);
    wasmBackendOf(args).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/**
 * PadV2 (the gradient of every slice, and the model's end padding): fill, then copy the input in
 * as blocks that are contiguous in both tensors. Stock wasm pads element by element.
 */
export function padKernel(_provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { paddings, constantValue } = args.attrs as { paddings: [number, number][]; constantValue: number };
    if (!COPYABLE.has(x.dtype) || paddings.length !== x.shape.length) return context.original(args);
    const outShape = x.shape.map((extent, d) => paddings[d][0] + extent + paddings[d][1]);
    const backend = wasmBackendOf(args);
    const out = backend.makeOutput(outShape, x.dtype);
    const output = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
    output.fill(constantValue);
    const size = sizeOf(x.shape);
    if (size === 0) return out;
    const input = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
    // Dimensions after the last padded one are copied as one block per row.
    let last = x.shape.length - 1;
    while (last > 0 && paddings[last][0] === 0 && paddings[last][1] === 0) last--;
    const block = sizeOf(x.shape.slice(last));
    const outStrides = contiguousStrides(outShape);
    const base = paddings.reduce((sum, [before], d) => sum + before * outStrides[d], 0);
    const rowShape = x.shape.slice(0, last);
    const index = new Array<number>(rowShape.length).fill(0);
    for (let source = 0; source < size; source += block) {
      let target = base;
      for (let d = 0; d < rowShape.length; d++) target += index[d] * outStrides[d];
      output.set(input.subarray(source, source + block), target);
      for (let d = rowShape.length - 1; d >= 0; d--) {
        if (++index[d] < rowShape[d]) break;
        index[d] = 0;
      }
    }
    return out;
  };
}

/** SplitV as one strided copy per part (stock wasm runs a Slice per part that copies rank > 4 inputs whole). */
export function splitKernel(provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    if (!COPYABLE.has(x.dtype)) return context.original(args);
    const dim = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, dim);
    const strides = contiguousStrides(x.shape);
    const backend = wasmBackendOf(args);
    const parts: TensorInfo[] = [];
    let begin = 0;
    for (const extent of sizes) {
      const shape = [...x.shape];
      shape[dim] = extent;
      const walk = simplifyWalk(shape, [strides]);
      const params = [walk.shape.length, begin * strides[dim], ...walk.shape, ...walk.strides[0]];
      const out = backend.makeOutput(shape, x.dtype);
      if (sizeOf(shape) > 0) {
        provider.stridedCopy(
          backend.typedArrayFromHeap(x) as Float32Array | Int32Array,
          backend.typedArrayFromHeap(out) as Float32Array | Int32Array,
          Int32Array.from(params),
        );
      }
      parts.push(out);
      begin += extent;
    }
    return parts;
  };
}

// The table of replaced kernels: name -> factory taking a provider and the original kernel.
import { batchMatMulKernel, fusedMatMulKernel } from './matmul.ts';
import { gatherKernel, sliceKernel, stridedSliceKernel, transposeKernel } from './copy.ts';
import { binaryKernel, erfKernel, softmaxKernel } from './elementwise.ts';
import type { KernelContext, KernelFunction } from './kernel-types.ts';
import type { KernelProvider } from './provider.ts';

type KernelFactory = (provider: KernelProvider, context: KernelContext) => KernelFunction;

export function kernelTable(): Record<string, KernelFactory> {
  return {
    BatchMatMul: batchMatMulKernel,
    _FusedMatMul: fusedMatMulKernel,
    Transpose: transposeKernel,
    Slice: sliceKernel,
    StridedSlice: stridedSliceKernel,
    GatherV2: gatherKernel,
    Add: (provider, context) => binaryKernel('Add', provider, context),
    Sub: (provider, context) => binaryKernel('Sub', provider, context),
    Multiply: (provider, context) => binaryKernel('Multiply', provider, context),
    RealDiv: (provider, context) => binaryKernel('RealDiv', provider, context),
    Erf: erfKernel,
    Softmax: softmaxKernel,
  };
}

// The table of replaced kernels: name -> the provider method it needs and its factory.
import { batchMatMulKernel, fusedMatMulKernel } from './matmul.ts';
import {
  gatherKernel,
  identityKernel,
  padKernel,
  sliceKernel,
  splitKernel,
  stridedSliceKernel,
  transposeKernel,
} from './copy.ts';
import { binaryKernel, erfKernel, softmaxKernel } from './elementwise.ts';
import { WINDOW_ATTENTION, windowAttentionKernel } from './attention.ts';
import { ADAMW, adamWKernel } from './optimizer.ts';
import {
  GELU,
  GELU_GRAD,
  geluGradKernel,
  geluKernel,
  LAYER_NORM,
  LAYER_NORM_GRAD,
  layerNormGradKernel,
  layerNormKernel,
} from './norm-and-gelu.ts';
import type { KernelContext, KernelFunction } from './kernel-types.ts';
import type { KernelProvider } from './provider.ts';

export interface KernelEntry {
  needs: keyof KernelProvider;
  /** A kernel of our own (no tfjs original): registered on install, removed on uninstall. */
  added?: boolean;
  factory: (provider: KernelProvider, context: KernelContext) => KernelFunction;
}

export function kernelTable(): Record<string, KernelEntry> {
  return {
    BatchMatMul: { needs: 'gemm', factory: batchMatMulKernel },
    _FusedMatMul: { needs: 'gemm', factory: fusedMatMulKernel },
    Transpose: { needs: 'stridedCopy', factory: transposeKernel },
    Slice: { needs: 'stridedCopy', factory: sliceKernel },
    StridedSlice: { needs: 'stridedCopy', factory: stridedSliceKernel },
    GatherV2: { needs: 'gather', factory: gatherKernel },
    Identity: { needs: 'stridedCopy', factory: identityKernel },
    PadV2: { needs: 'stridedCopy', factory: padKernel },
    SplitV: { needs: 'stridedCopy', factory: splitKernel },
    Add: { needs: 'binary', factory: (provider, context) => binaryKernel('Add', provider, context) },
    Sub: { needs: 'binary', factory: (provider, context) => binaryKernel('Sub', provider, context) },
    Multiply: { needs: 'binary', factory: (provider, context) => binaryKernel('Multiply', provider, context) },
    RealDiv: { needs: 'binary', factory: (provider, context) => binaryKernel('RealDiv', provider, context) },
    Erf: { needs: 'erf', factory: erfKernel },
    Softmax: { needs: 'softmax', factory: softmaxKernel },
    [WINDOW_ATTENTION]: { needs: 'windowAttention', factory: windowAttentionKernel, added: true },
    [LAYER_NORM]: { needs: 'layerNorm', factory: layerNormKernel, added: true },
    [LAYER_NORM_GRAD]: { needs: 'layerNormGrad', factory: layerNormGradKernel, added: true },
    [GELU]: { needs: 'gelu', factory: geluKernel, added: true },
    [GELU_GRAD]: { needs: 'geluGrad', factory: geluGradKernel, added: true },
    [ADAMW]: { needs: 'adamw', factory: adamWKernel, added: true },
  };
}

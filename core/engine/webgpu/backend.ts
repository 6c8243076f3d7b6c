/// <reference types="@webgpu/types" />
// Registers TensorFlow.js's WebGPU backend on the adapter found by adapter.ts. The package registers
// itself only when `navigator.gpu` exists (a browser), and then asks for its own adapter; here the
// backend is created on the adapter we chose and described, with the device limits raised to the
// adapter's so large activations fit in one binding.
import { tf } from '../tf.ts';
import { probeWebGpu, WEBGPU_INSTALL_HINT, type WebGpuAdapterSummary } from './adapter.ts';
import { installWebGpuKernels, uninstallWebGpuKernels, WEBGPU_KERNELS } from './kernels.ts';

export const WEBGPU_BACKEND = 'webgpu';

/** The backend's constructor checks `navigator.gpu`, as in a browser; Node 21+ has a navigator. */
function exposeGpu(gpu: GPU): void {
  const global = globalThis as { navigator?: object };
  if (global.navigator) Object.defineProperty(global.navigator, 'gpu', { value: gpu, configurable: true });
  else global.navigator = { gpu, userAgent: `Node.js/${process.versions.node}` };
}

let summary: WebGpuAdapterSummary | null = null;
const errors: string[] = [];

/** Device errors since the last call (and clears them): any means some result was not computed. */
export function takeWebGpuErrors(): string[] {
  return errors.splice(0);
}

/** The adapter the running webgpu backend uses (null before it starts). */
export function webGpuAdapter(): WebGpuAdapterSummary | null {
  return summary;
}

/**
 * Makes `tf.setBackend('webgpu')` possible: registers the backend factory once. Throws with what to
 * install when Dawn or an adapter is missing.
 */
export async function registerWebGpuBackend(): Promise<WebGpuAdapterSummary> {
  const found = await probeWebGpu();
  if (!found.ok) throw new Error(`The webgpu backend cannot start: ${found.reason}. Install: ${WEBGPU_INSTALL_HINT}`);
  if (tf.findBackendFactory(WEBGPU_BACKEND)) return found.summary;
  // Imported before navigator.gpu exists, so the package does not register a backend of its own.
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  const adapter = found.adapter;
  exposeGpu(found.gpu);
  tf.registerBackend(
    WEBGPU_BACKEND,
    async () => {
      const limits = adapter.limits;
      const device = await adapter.requestDevice({
        requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
        requiredLimits: {
          maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
          maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
          maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
          maxBufferSize: limits.maxBufferSize,
          maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
          maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        },
      });
      // Validation errors (a binding too large, too many buffers) are otherwise only printed and the
      // results silently wrong: keep them so webGpuErrors() can report them.
      device.addEventListener('uncapturederror', (event) => {
        errors.push((event as GPUUncapturedErrorEvent).error.message.split('\n')[0]);
      });
      return new WebGPUBackend(device, adapter.info);
    },
    // Below wasm: tfjs never picks it on its own; backend.ts decides.
    0,
  );
  summary = found.summary;
  return found.summary;
}

/**
 * Installs the fused WGSL kernels (kernels.ts) unless VSWIN_KERNELS=stock asks for tfjs's own only;
 * returns the kernel names in use, for doctor and the benchmarks.
 */
export function applyWebGpuKernels(request: string | undefined = process.env.VSWIN_KERNELS): string[] {
  if (request === 'stock') {
    uninstallWebGpuKernels();
    return [];
  }
  installWebGpuKernels();
  return [...WEBGPU_KERNELS];
}

interface WebGpuBackendInternals {
  bufferManager: { getNumUsedBuffers(): number; numBytesUsed: number };
}

/** GPU buffers held by tensors of the running webgpu backend (for leak tests and benchmarks). */
export function webGpuMemory(): { buffers: number; bytes: number } {
  if (tf.getBackend() !== WEBGPU_BACKEND) throw new Error(`webGpuMemory: the running backend is ${tf.getBackend()}, not webgpu`);
  const { bufferManager } = tf.backend() as unknown as WebGpuBackendInternals;
  return { buffers: bufferManager.getNumUsedBuffers(), bytes: bufferManager.numBytesUsed };
}

/**
 * On webgpu a tensor is one buffer bound whole to a shader; past the adapter's
 * maxStorageBufferBindingSize the device rejects the binding and the values would be silently wrong,
 * so this throws first, naming the tensor, its size and the limit. Does nothing on other backends.
 */
export function checkWebGpuBinding(elements: number, what: string): void {
  if (tf.getBackend() !== WEBGPU_BACKEND || !summary) return;
  const bytes = elements * 4;
  const limit = summary.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new Error(
      `${what} needs a ${Math.ceil(bytes / 2 ** 20)} MiB buffer, above this WebGPU adapter's maxStorageBufferBindingSize of ${Math.floor(limit / 2 ** 20)} MiB (${summary.description || summary.device}); use a smaller batch or clip, or --backend wasm`,
    );
  }
}

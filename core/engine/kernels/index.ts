// Fast kernels behind TensorFlow.js's kernel names. On the wasm backend the chosen tier's kernels
// replace the stock ones by name (the model code does not change); every case a replacement does
// not handle (dtype, odd broadcast, rank) goes to the original kernel, which is kept.
import { onBackendReady } from '../backend.ts';
import { tf } from '../tf.ts';
import { kernelTable } from './kernel-table.ts';
import type { KernelContext, KernelFunction } from './kernel-types.ts';
import { loadNativeKernels } from './native-addon.ts';
import type { KernelProvider } from './provider.ts';

export const KERNELS_ENV = 'VSWIN_KERNELS';
export const KERNEL_TIERS = ['native', 'wasm', 'stock'] as const;
export type KernelTier = (typeof KERNEL_TIERS)[number];
export type KernelRequest = KernelTier | 'auto';

export interface FastKernelStatus {
  tier: KernelTier;
  /** Plain-words reason for the tier, for `vswin doctor` and the UI's settings. */
  reason: string;
  /** Matrix-multiply instruction set of the tier (avx512, avx2, portable), null on stock. */
  isa: string | null;
  /** Threads the tier's kernels run on (stock wasm runs on one). */
  threads: number;
  /** Kernel names currently replaced. */
  kernels: string[];
}

export function parseKernelRequest(value: string | undefined, source: string): KernelRequest {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if ((KERNEL_TIERS as readonly string[]).includes(value)) return value as KernelTier;
  throw new Error(`${source}: unknown kernel tier "${value}"; expected one of auto, ${KERNEL_TIERS.join(', ')}`);
}

type KernelFactory = (provider: KernelProvider, context: KernelContext) => KernelFunction;

const replaced = new Map<string, tf.KernelConfig>();
let status: FastKernelStatus = stockStatus('fast kernels not installed (no backend started yet)');

function stockStatus(reason: string): FastKernelStatus {
  return { tier: 'stock', reason, isa: null, threads: 1, kernels: [] };
}

export function fastKernelStatus(): FastKernelStatus {
  return { ...status, kernels: [...status.kernels] };
}

/** Puts the stock wasm kernels back. */
export function uninstallFastKernels(): void {
  for (const [name, original] of replaced) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(original);
  }
  replaced.clear();
  status = stockStatus('fast kernels uninstalled');
}

function replaceKernels(provider: KernelProvider, factories: Record<string, KernelFactory>): string[] {
  const kernel = (name: string): KernelFunction => {
    const config = tf.getKernel(name, 'wasm');
    if (!config) throw new Error(`fast kernels: the wasm backend has no ${name} kernel`);
    return config.kernelFunc as KernelFunction;
  };
  for (const [name, factory] of Object.entries(factories)) {
    const original = tf.getKernel(name, 'wasm');
    if (!original) continue;
    const kernelFunc = factory(provider, { original: original.kernelFunc as KernelFunction, kernel });
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: kernelFunc as tf.KernelFunc });
    replaced.set(name, original);
  }
  return [...replaced.keys()];
}

/**
 * Installs the tier chosen by `request` (default: the VSWIN_KERNELS environment variable) for the
 * backend that just started. An explicit request that cannot be met throws, so a test run with
 * VSWIN_KERNELS=native never silently measures the stock kernels.
 */
export function installFastKernels(choice: { name: string }, request: string | undefined = process.env[KERNELS_ENV]): FastKernelStatus {
  const wanted = parseKernelRequest(request, KERNELS_ENV);
  uninstallFastKernels();
  if (choice.name !== 'wasm') {
    status = stockStatus(`the ${choice.name} backend runs its own kernels`);
    return fastKernelStatus();
  }
  if (wanted === 'stock') {
    status = stockStatus(`requested with ${KERNELS_ENV}=stock`);
    return fastKernelStatus();
  }
  if (wanted === 'wasm') {
    throw new Error(`${KERNELS_ENV}=wasm: the WebAssembly SIMD tier is not built yet; use native or stock`);
  }
  const native = loadNativeKernels();
  if (!native.ok) {
    if (wanted === 'native') throw new Error(`${KERNELS_ENV}=native: ${native.reason}`);
    status = stockStatus(`auto: ${native.reason}; the WebAssembly SIMD tier is not built yet, so the stock kernels run`);
    return fastKernelStatus();
  }
  const kernels = replaceKernels(native.provider, kernelTable());
  const { isa, threads } = native.provider.info();
  const reason = wanted === 'native' ? `requested with ${KERNELS_ENV}=native` : 'auto: the native addon is built and loads';
  status = { tier: 'native', reason, isa, threads, kernels };
  return fastKernelStatus();
}

/** Test hook: the native provider (or null with the reason it is unavailable). */
export function nativeProvider(): KernelProvider | null {
  const native = loadNativeKernels();
  return native.ok ? native.provider : null;
}

let hookRegistered = false;
/** Makes every backend start install the fast kernels; called once from backend.ts. */
export function registerFastKernelHook(): void {
  if (hookRegistered) return;
  hookRegistered = true;
  onBackendReady((choice) => {
    installFastKernels(choice);
  });
}

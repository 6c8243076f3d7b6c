// Fast kernels behind TensorFlow.js's kernel names. On the wasm backend the chosen tier's kernels
// replace the stock ones by name (the model code does not change); every case a replacement does
// not handle (dtype, odd broadcast, rank) goes to the original kernel, which is kept.
import { onBackendReady } from '../backend.ts';
import { tf } from '../tf.ts';
import { kernelTable, type KernelEntry } from './kernel-table.ts';
import type { KernelFunction } from './kernel-types.ts';
import { loadNativeKernels } from './native-addon.ts';
import type { KernelProvider } from './provider.ts';
import { loadWasmKernels, wasmThreadingStatus } from './wasm-simd.ts';

export { fusedWindowAttention, WINDOW_ATTENTION } from './attention.ts';
export { fusedGelu, fusedLayerNorm } from './norm-and-gelu.ts';
export { fusedAdamWUpdate, type AdamWStep } from './optimizer.ts';
export { shutdownWasmThreads, useWasmThreads, WASM_THREADS_ENV, wasmThreadingStatus } from './wasm-simd.ts';

export const KERNELS_ENV = 'VSWIN_KERNELS';
export const KERNEL_TIERS = ['native', 'wasm', 'stock'] as const;
export type KernelTier = (typeof KERNEL_TIERS)[number];
export type KernelRequest = KernelTier | 'auto';

export interface FastKernelStatus {
  tier: KernelTier;
  /** Plain-words reason for the tier, for `vswin doctor` and the UI's settings. */
  reason: string;
  /** Matrix-multiply instruction set of the tier (avx512, avx2, portable, wasm-simd128), null on stock. */
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

const replaced = new Map<string, tf.KernelConfig>();
const added = new Set<string>();
let active: KernelProvider | null = null;
let status: FastKernelStatus = stockStatus('fast kernels not installed (no backend started yet)');

function stockStatus(reason: string): FastKernelStatus {
  return { tier: 'stock', reason, isa: null, threads: 1, kernels: [] };
}

export function fastKernelStatus(): FastKernelStatus {
  // The wasm tier's thread count can change after install (useWasmThreads), so it is asked live.
  const threads = status.tier === 'wasm' && active ? active.info().threads : status.threads;
  return { ...status, threads, kernels: [...status.kernels] };
}

/** Puts the stock wasm kernels back. */
export function uninstallFastKernels(): void {
  for (const [name, original] of replaced) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(original);
  }
  replaced.clear();
  for (const name of added) tf.unregisterKernel(name, 'wasm');
  added.clear();
  active = null;
  status = stockStatus('fast kernels uninstalled');
}

function replaceKernels(provider: KernelProvider, table: Record<string, KernelEntry>): string[] {
  const kernel = (name: string): KernelFunction => {
    const config = tf.getKernel(name, 'wasm');
    if (!config) throw new Error(`fast kernels: the wasm backend has no ${name} kernel`);
    return config.kernelFunc as KernelFunction;
  };
  const missing: KernelFunction = () => {
    throw new Error('fast kernels: this kernel has no stock version to fall back to');
  };
  for (const [name, entry] of Object.entries(table)) {
    if (typeof provider[entry.needs] !== 'function') continue;
    const original = tf.getKernel(name, 'wasm');
    if (entry.added) {
      if (original) tf.unregisterKernel(name, 'wasm');
      tf.registerKernel({
        kernelName: name,
        backendName: 'wasm',
        kernelFunc: entry.factory(provider, { original: missing, kernel }) as tf.KernelFunc,
      });
      added.add(name);
      continue;
    }
    if (!original) continue;
    const kernelFunc = entry.factory(provider, { original: original.kernelFunc as KernelFunction, kernel });
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: kernelFunc as tf.KernelFunc });
    replaced.set(name, original);
  }
  active = provider;
  return [...replaced.keys(), ...added];
}

/**
 * Installs the tier chosen by `request` (default: the VSWIN_KERNELS environment variable) for the
 * backend that just started. An explicit request that cannot be met throws, so a test run with
 * VSWIN_KERNELS=native never silently measures the stock kernels.
 */
export function installFastKernels(
  choice: { name: string },
  request: string | undefined = process.env[KERNELS_ENV],
): FastKernelStatus {
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
  const native = wanted === 'wasm' ? null : loadNativeKernels();
  if (native?.ok) {
    const kernels = replaceKernels(native.provider, kernelTable());
    const { isa, threads } = native.provider.info();
    const reason = wanted === 'native' ? `requested with ${KERNELS_ENV}=native` : 'auto: the native addon is built and loads';
    status = { tier: 'native', reason, isa, threads, kernels };
    return fastKernelStatus();
  }
  if (native && wanted === 'native') throw new Error(`${KERNELS_ENV}=native: ${native.reason}`);
  const simd = loadWasmKernels(tf.backend());
  if (!simd.ok) {
    if (wanted === 'wasm') throw new Error(`${KERNELS_ENV}=wasm: ${simd.reason}`);
    status = stockStatus(
      `auto: ${native?.ok === false ? native.reason : 'no native addon'}; WebAssembly SIMD tier unavailable: ${simd.reason}`,
    );
    return fastKernelStatus();
  }
  const kernels = replaceKernels(simd.provider, kernelTable());
  const { isa, threads } = simd.provider.info();
  const threading = wasmThreadingStatus();
  const why =
    wanted === 'wasm'
      ? `requested with ${KERNELS_ENV}=wasm`
      : `auto: ${native?.ok === false ? native.reason : 'no native addon'}, so the WebAssembly SIMD tier runs`;
  const reason = threading.problem ? `${why}; one thread instead of ${threading.requested}: ${threading.problem}` : why;
  status = { tier: 'wasm', reason, isa, threads, kernels };
  return fastKernelStatus();
}

/** The provider behind the installed kernels (null on stock), for tests and benchmarks. */
export function activeProvider(): KernelProvider | null {
  return active;
}

/** Test hook: the native provider (or null with the reason it is unavailable). */
export function nativeProvider(): Required<KernelProvider> | null {
  const native = loadNativeKernels();
  return native.ok ? native.provider : null;
}

function fastKernelHook(choice: { name: string }): void {
  installFastKernels(choice);
}

type HookState = { registered?: boolean; pending?: boolean };

/** Makes every backend start install the fast kernels; called once from backend.ts. */
export function registerFastKernelHook(): void {
  // backend.ts and this module import each other. When this module is loaded first, backend.ts
  // calls this before this module's own imports are bound (Vitest's module runner then throws a
  // ReferenceError), so only hoisted declarations are used here and the registration is finished
  // at the end of this module instead.
  const state = registerFastKernelHook as HookState;
  if (state.registered) return;
  state.registered = true;
  try {
    onBackendReady(fastKernelHook);
  } catch (error) {
    if (!(error instanceof ReferenceError)) throw error;
    state.pending = true;
  }
}

if ((registerFastKernelHook as HookState).pending) {
  (registerFastKernelHook as HookState).pending = false;
  onBackendReady(fastKernelHook);
}

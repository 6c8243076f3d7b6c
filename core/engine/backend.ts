// Backend choice. `auto` takes native TensorFlow with CUDA (tfjs-node-gpu) when it loads, then a
// WebGPU adapter that is a real GPU (Dawn: Vulkan, Metal or D3D12, any vendor), then native
// TensorFlow on the CPU (tfjs-node), then WASM (the embedded default); the pure-JS CPU backend only
// on request. Overridable by flag or env.
import { createRequire } from 'node:module';
import { tf } from './tf.ts';
import { registerFastKernelHook } from './kernels/index.ts';
import { describeAdapter, probeWebGpu, WEBGPU_INSTALL_HINT, type WebGpuAdapterSummary } from './webgpu/adapter.ts';
import { applyWebGpuKernels, registerWebGpuBackend } from './webgpu/backend.ts';

export const BACKEND_NAMES = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export type BackendRequest = BackendName | 'auto';

/** Environment variable that overrides the automatic choice (the `--backend` flag wins over it). */
export const BACKEND_ENV = 'VSWIN_BACKEND';

export interface BackendChoice {
  name: BackendName;
  /** Plain-words reason for the choice, shown by the CLI and the UI's settings. */
  reason: string;
  /** Package providing the backend. */
  provider: string;
  /** The WebGPU adapter when the webgpu backend runs. */
  adapter?: WebGpuAdapterSummary;
  /** The fused WGSL kernels in use on webgpu (none with VSWIN_KERNELS=stock). */
  kernels?: string[];
}

/** What Dawn found and why it was or was not chosen, for `vswin doctor` and the UI's settings. */
export interface WebGpuStatus {
  adapter: WebGpuAdapterSummary | null;
  /** One line: the adapter (vendor, architecture, description, limits) or why there is none. */
  description: string;
  /** Whether `auto` would take it (a real GPU, not a software rasteriser). */
  preferred: boolean;
  /** Why it was or was not chosen. */
  verdict: string;
}

/** Hooks run after a backend starts, e.g. to install faster kernels (see kernels/). */
type BackendHook = (choice: BackendChoice) => Promise<void> | void;
const hooks: BackendHook[] = [];
export function onBackendReady(hook: BackendHook): void {
  hooks.push(hook);
}

let current: BackendChoice | null = null;

export function parseBackendRequest(value: string | undefined, source: string): BackendRequest {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new Error(`${source}: unknown backend "${value}"; expected one of auto, ${BACKEND_NAMES.join(', ')}`);
}

const require = createRequire(import.meta.url);

function loadNativeTensorflow(
  packages: readonly string[] = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'],
): { provider: string } | { error: string } {
  const failures: string[] = [];
  for (const pkg of packages) {
    try {
      require(pkg);
      return { provider: pkg };
    } catch (error) {
      const message = (error as Error).message.split('\n')[0];
      failures.push(`${pkg}: ${/Cannot find module/.test(message) ? 'not installed' : message}`);
    }
  }
  return { error: failures.join('; ') };
}

/**
 * Starts a backend. `flag` is the CLI/UI request; when absent or 'auto', VSWIN_BACKEND is consulted,
 * then the automatic order (tensorflow when installed, else wasm).
 */
export async function initBackend(flag?: string): Promise<BackendChoice> {
  const fromFlag = parseBackendRequest(flag, '--backend');
  const fromEnv = parseBackendRequest(process.env[BACKEND_ENV], BACKEND_ENV);
  const request = fromFlag !== 'auto' ? fromFlag : fromEnv;
  const origin = fromFlag !== 'auto' ? 'requested with --backend' : fromEnv !== 'auto' ? `requested with ${BACKEND_ENV}` : null;

  let choice: BackendChoice;
  if (request === 'auto') {
    choice = await chooseAutomatically();
  } else if (request === 'tensorflow') {
    const native = loadNativeTensorflow();
    if (!('provider' in native)) {
      throw new Error(
        `The tensorflow backend was ${origin} but cannot load (${native.error}). Install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node, or use --backend wasm.`,
      );
    }
    choice = { name: 'tensorflow', provider: native.provider, reason: origin ?? 'requested' };
  } else if (request === 'webgpu') {
    const adapter = await registerWebGpuBackend();
    const caveat = adapter.software ? '; this adapter is a software rasteriser: correct but slower than wasm' : '';
    choice = { name: 'webgpu', provider: WEBGPU_PROVIDER, reason: `${origin}${caveat}`, adapter };
  } else if (request === 'wasm') {
    choice = { name: 'wasm', provider: '@tensorflow/tfjs-backend-wasm', reason: origin ?? 'default' };
  } else {
    choice = { name: 'cpu', provider: '@tensorflow/tfjs-backend-cpu', reason: origin ?? 'requested' };
  }

  // Already running: only the reason may differ (e.g. now requested by flag instead of env).
  if (current && current.name === choice.name && tf.getBackend() === choice.name) return (current = choice);
  if (choice.name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  const ok = await tf.setBackend(choice.name);
  if (!ok) throw new Error(`TensorFlow.js could not start the ${choice.name} backend (${choice.provider}).`);
  await tf.ready();
  // The cpu backend advertises tfjs-node on first use; the CLI already says which backend runs and why.
  if (choice.name === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  if (choice.name === 'webgpu') choice.kernels = applyWebGpuKernels();
  current = choice;
  for (const hook of hooks) await hook(choice);
  return choice;
}

const WEBGPU_PROVIDER = '@tensorflow/tfjs-backend-webgpu on Dawn (webgpu)';

/** The automatic order: tfjs-node-gpu, a WebGPU GPU, tfjs-node, wasm. */
async function chooseAutomatically(): Promise<BackendChoice> {
  const cuda = loadNativeTensorflow(['@tensorflow/tfjs-node-gpu']);
  if ('provider' in cuda)
    return { name: 'tensorflow', provider: cuda.provider, reason: 'auto: @tensorflow/tfjs-node-gpu loads (CUDA)' };
  const gpu = await webGpuStatus();
  if (gpu.preferred && gpu.adapter) {
    await registerWebGpuBackend();
    return { name: 'webgpu', provider: WEBGPU_PROVIDER, reason: `auto: ${gpu.verdict}`, adapter: gpu.adapter };
  }
  const cpu = loadNativeTensorflow(['@tensorflow/tfjs-node']);
  if ('provider' in cpu) {
    return {
      name: 'tensorflow',
      provider: cpu.provider,
      reason: `auto: ${cpu.provider} is installed (native TensorFlow); ${gpu.verdict}`,
    };
  }
  return {
    name: 'wasm',
    provider: '@tensorflow/tfjs-backend-wasm',
    reason: `default: native TensorFlow unavailable (${cuda.error}; ${cpu.error}); ${gpu.verdict}`,
  };
}

/** What Dawn finds on this machine and whether `auto` takes it; never starts a backend. */
export async function webGpuStatus(): Promise<WebGpuStatus> {
  const found = await probeWebGpu();
  if (!found.ok) {
    const hint = found.missing === 'error' ? '' : ` (install: ${WEBGPU_INSTALL_HINT})`;
    return { adapter: null, description: found.reason, preferred: false, verdict: `no WebGPU: ${found.reason}${hint}` };
  }
  const { summary } = found;
  const description = describeAdapter(summary);
  const verdict = summary.software
    ? `WebGPU adapter ${summary.description || summary.device} is a software rasteriser, not chosen (use --backend webgpu to force it)`
    : `WebGPU adapter ${summary.vendor} ${summary.architecture} (${summary.description || summary.device}) is a GPU`;
  return { adapter: summary, description, preferred: !summary.software, verdict };
}

/**
 * Whether the CUDA route (tfjs-node-gpu) loads. It needs CUDA 11.2 + cuDNN 8 and downloads
 * libtensorflow at install, so this project's CI never runs it: say so wherever it is reported.
 */
export function cudaStatus(): string {
  const cuda = loadNativeTensorflow(['@tensorflow/tfjs-node-gpu']);
  const state = 'provider' in cuda ? 'loads' : cuda.error.replace('@tensorflow/tfjs-node-gpu: ', '');
  return `${state}; the CUDA route (CUDA 11.2, cuDNN 8) is untested by this project's CI, which has no NVIDIA GPU`;
}

export function currentBackend(): BackendChoice | null {
  return current;
}

// Faster kernels replace tfjs's by name whenever the wasm backend starts (kernels/index.ts picks the
// tier: native addon, else stock; VSWIN_KERNELS forces one).
registerFastKernelHook();

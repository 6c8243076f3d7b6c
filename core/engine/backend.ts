// Backend choice: native TensorFlow (tfjs-node-gpu, then tfjs-node) when installed, else WASM (the
// embedded default), or the pure-JS CPU backend. Chosen automatically, overridable by flag or env.
import { createRequire } from 'node:module';
import { tf } from './tf.ts';
import { registerFastKernelHook } from './kernels/index.ts';

export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
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

function loadNativeTensorflow(): { provider: string } | { error: string } {
  const failures: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
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
  if (request === 'tensorflow' || request === 'auto') {
    const native = loadNativeTensorflow();
    if ('provider' in native) {
      choice = {
        name: 'tensorflow',
        provider: native.provider,
        reason: origin ?? `${native.provider} is installed (native TensorFlow)`,
      };
    } else if (request === 'tensorflow') {
      throw new Error(
        `The tensorflow backend was ${origin} but cannot load (${native.error}). Install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node, or use --backend wasm.`,
      );
    } else {
      choice = {
        name: 'wasm',
        provider: '@tensorflow/tfjs-backend-wasm',
        reason: `default: native TensorFlow unavailable (${native.error})`,
      };
    }
  } else if (request === 'wasm') {
    choice = { name: 'wasm', provider: '@tensorflow/tfjs-backend-wasm', reason: origin ?? 'default' };
  } else {
    choice = { name: 'cpu', provider: '@tensorflow/tfjs-backend-cpu', reason: origin ?? 'requested' };
  }

  if (current && current.name === choice.name && tf.getBackend() === choice.name) return current;
  if (choice.name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  const ok = await tf.setBackend(choice.name);
  if (!ok) throw new Error(`TensorFlow.js could not start the ${choice.name} backend (${choice.provider}).`);
  await tf.ready();
  // The cpu backend advertises tfjs-node on first use; the CLI already says which backend runs and why.
  if (choice.name === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  current = choice;
  for (const hook of hooks) await hook(choice);
  return choice;
}

export function currentBackend(): BackendChoice | null {
  return current;
}

// Faster kernels replace tfjs's by name whenever the wasm backend starts (kernels/index.ts picks the
// tier: native addon, else stock; VSWIN_KERNELS forces one).
registerFastKernelHook();

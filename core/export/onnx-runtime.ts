// ONNX Runtime (the optional onnxruntime-node package, CPU) for checking an exported file against the
// workbench's own forward pass and for running it beside ours in the benchmark.
import { createRequire } from 'node:module';
import { tf } from '../engine/tf.ts';
import { Random } from '../engine/random.ts';
import type { VideoSwin } from '../model/video-swin.ts';
import { ONNX_INPUT, ONNX_OUTPUT } from './onnx.ts';

// The few parts of onnxruntime-node used here (typed locally: the package is optional).
interface OrtTensor {
  data: unknown;
  dims: readonly number[];
}
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface OrtModule {
  InferenceSession: {
    create(
      model: string | Uint8Array,
      options?: {
        intraOpNumThreads?: number;
        interOpNumThreads?: number;
        graphOptimizationLevel?: 'all';
        extra?: Record<string, Record<string, Record<string, string>>>;
      },
    ): Promise<OrtSession>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
  env: { versions: { common: string; node?: string } };
}

export type OnnxRuntime = { available: true; version: string; module: OrtModule } | { available: false; reason: string };

let cached: OnnxRuntime | null = null;

/** onnxruntime-node if it is installed (an optional dependency), else why not. */
export function loadOnnxRuntime(): OnnxRuntime {
  if (cached) return cached;
  try {
    const module = createRequire(import.meta.url)('onnxruntime-node') as OrtModule;
    cached = { available: true, version: module.env.versions.node ?? module.env.versions.common, module };
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    cached = {
      available: false,
      reason: /Cannot find module/.test(message)
        ? 'onnxruntime-node is not installed (an optional dependency; `npm install onnxruntime-node` adds it)'
        : `onnxruntime-node does not load: ${message}`,
    };
  }
  return cached;
}

export function requireOnnxRuntime(): { version: string; module: OrtModule } {
  const runtime = loadOnnxRuntime();
  if (!runtime.available) throw new Error(runtime.reason);
  return runtime;
}

/** An ONNX Runtime CPU session on a file or its bytes, all graph optimisations on. */
export async function openSession(model: string | Uint8Array, threads: number): Promise<OrtSession> {
  const { module } = requireOnnxRuntime();
  return module.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
}

/** Runs an exported Video Swin on one input; returns the logits. */
export async function runSession(session: OrtSession, input: Float32Array, shape: readonly number[]): Promise<Float32Array> {
  const { module } = requireOnnxRuntime();
  const outputs = await session.run({ [ONNX_INPUT]: new module.Tensor('float32', input, shape) });
  const logits = outputs[ONNX_OUTPUT];
  if (!logits || !(logits.data instanceof Float32Array))
    throw new Error(`the ONNX session returned no float "${ONNX_OUTPUT}" output (outputs: ${Object.keys(outputs).join(', ')})`);
  return logits.data;
}

/** A seeded standard-normal clip (the verification and benchmark input). */
export function normalClip(shape: readonly number[], seed: number): Float32Array {
  const random = new Random(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random.normal());
}

/** The tolerance of the check: |onnx - ours| <= ATOL + RTOL * |ours| for every logit. */
export const VERIFY_ATOL = 1e-4;
export const VERIFY_RTOL = 1e-4;

export interface OnnxVerification {
  ok: boolean;
  runtime: string;
  logits: number;
  maxAbsDiff: number;
  /** Largest |diff| / (ATOL + RTOL |ours|): at most 1 when the check passes. */
  worstRatio: number;
  message: string;
}

/** Our model's logits for an input, every tensor released. */
export function ourLogits(model: VideoSwin, input: Float32Array, shape: readonly number[]): Float32Array {
  return tf.tidy(() => model.predict(tf.tensor(input, [...shape], 'float32')).dataSync() as Float32Array);
}

export function compareLogits(ours: Float32Array, theirs: Float32Array, runtime: string): OnnxVerification {
  if (ours.length !== theirs.length)
    throw new Error(
      `ONNX Runtime returned ${theirs.length} logits, the workbench ${ours.length}; the shapes of the export are wrong`,
    );
  let maxAbsDiff = 0;
  let worstRatio = 0;
  for (let i = 0; i < ours.length; i++) {
    const diff = Math.abs(ours[i] - theirs[i]);
    maxAbsDiff = Math.max(maxAbsDiff, Number.isNaN(diff) ? Infinity : diff);
    worstRatio = Math.max(worstRatio, Number.isNaN(diff) ? Infinity : diff / (VERIFY_ATOL + VERIFY_RTOL * Math.abs(ours[i])));
  }
  const ok = worstRatio <= 1;
  const message =
    `${runtime}: ${ours.length} logits ${ok ? 'match' : 'DO NOT match'} the workbench's within ` +
    `${VERIFY_ATOL} + ${VERIFY_RTOL}|ref| (max |diff| ${maxAbsDiff.toExponential(2)}, ${(worstRatio * 100).toFixed(1)} % of the tolerance)`;
  return { ok, runtime, logits: ours.length, maxAbsDiff, worstRatio, message };
}

/** Runs the exported bytes in ONNX Runtime and compares its logits with the model's on a seeded clip. */
export async function verifyOnnx(
  bytes: Uint8Array,
  model: VideoSwin,
  inputShape: readonly number[],
  seed = 0,
): Promise<OnnxVerification> {
  const { version } = requireOnnxRuntime();
  const input = normalClip(inputShape, seed);
  const ours = ourLogits(model, input, inputShape);
  const session = await openSession(bytes, 2);
  try {
    return compareLogits(ours, await runSession(session, input, inputShape), `ONNX Runtime ${version} (CPU)`);
  } finally {
    await session.release();
  }
}

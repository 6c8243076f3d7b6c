// `vswin export onnx CHECKPOINT OUT.onnx`: a checkpoint's model as an ONNX file, checked in ONNX
// Runtime when it is installed. The model config comes from --model-config, else the config stored
// in the checkpoint, else the one read off its tensor shapes.
import { writeFileSync } from 'node:fs';
import { type ModelConfig, parseModelConfig } from '../model/config.ts';
import { createVideoSwin, describeLoadProblems } from '../model/video-swin.ts';
import { loadCheckpoint } from '../model/weights/checkpoint.ts';
import { configFromGuess, diagnoseLoaded } from '../model/weights/doctor.ts';
import { exportOnnx, ONNX_OPSET, type OnnxExportShape } from './onnx.ts';
import { loadOnnxRuntime, verifyOnnx, type OnnxVerification } from './onnx-runtime.ts';

export interface ExportOnnxOptions {
  checkpoint: string;
  out: string;
  frames: number;
  height: number;
  width: number;
  batch?: number;
  /** Overrides the config stored in (or guessed from) the checkpoint. */
  modelConfig?: ModelConfig;
  /** Run the file in ONNX Runtime and compare logits (default: when onnxruntime-node is installed). */
  verify?: boolean;
}

export interface ExportOnnxReport {
  out: string;
  bytes: number;
  nodes: number;
  inputShape: number[];
  outputShape: number[];
  configSource: 'given' | 'stored in the checkpoint' | 'read off the tensor shapes';
  /** Null when the file was not verified, with the reason in `skipped`. */
  verification: OnnxVerification | null;
  skipped: string | null;
}

function modelConfigOf(options: ExportOnnxOptions, checkpoint: ReturnType<typeof loadCheckpoint>) {
  if (options.modelConfig) return { config: options.modelConfig, source: 'given' as const };
  const stored = checkpoint.metadata.config;
  if (stored && typeof stored === 'object')
    return {
      config: parseModelConfig(stored, `model config stored in ${options.checkpoint}`),
      source: 'stored in the checkpoint' as const,
    };
  const diagnosis = diagnoseLoaded(checkpoint);
  const guessed = diagnosis.guessed && diagnosis.kind !== 'swin2d' ? configFromGuess(diagnosis.guessed) : null;
  if (!guessed || diagnosis.guessed?.num_classes == null)
    throw new Error(
      `${options.checkpoint}: cannot tell which model it holds (${diagnosis.kind} checkpoint, no stored config` +
        `${diagnosis.guessed?.num_classes == null ? ', no classification head' : ''}); pass --model-config with a variant or config JSON`,
    );
  return { config: guessed, source: 'read off the tensor shapes' as const };
}

export async function exportCheckpointOnnx(options: ExportOnnxOptions): Promise<ExportOnnxReport> {
  const checkpoint = loadCheckpoint(options.checkpoint);
  const { config, source } = modelConfigOf(options, checkpoint);
  const model = createVideoSwin(config);
  try {
    let report: ReturnType<typeof model.loadStateDict>;
    try {
      report = model.loadStateDict(checkpoint.stateDict);
    } catch (error) {
      throw new Error(`${options.checkpoint} (model config ${source}): ${(error as Error).message}`);
    }
    if (report.missing.length || report.unexpected.length)
      throw new Error(`${options.checkpoint} (model config ${source}): ${describeLoadProblems(report)}`);
    const shape: OnnxExportShape = {
      batch: options.batch ?? 1,
      frames: options.frames,
      height: options.height,
      width: options.width,
    };
    const exported = exportOnnx(model, shape, { checkpoint: options.checkpoint });
    writeFileSync(options.out, exported.bytes);
    let verification: OnnxVerification | null = null;
    let skipped: string | null = null;
    const runtime = loadOnnxRuntime();
    if (options.verify === false) skipped = 'verification not asked for';
    else if (!runtime.available) {
      if (options.verify) throw new Error(`cannot verify ${options.out}: ${runtime.reason}`);
      skipped = runtime.reason;
    } else verification = await verifyOnnx(exported.bytes, model, exported.inputShape);
    return {
      out: options.out,
      bytes: exported.bytes.length,
      nodes: exported.nodes,
      inputShape: exported.inputShape,
      outputShape: exported.outputShape,
      configSource: source,
      verification,
      skipped,
    };
  } finally {
    model.dispose();
  }
}

/** The lines the CLI prints for a report. */
export function describeExport(report: ExportOnnxReport): string[] {
  const lines = [
    `wrote ${report.out}: ONNX opset ${ONNX_OPSET}, ${report.nodes} nodes, ${(report.bytes / 2 ** 20).toFixed(1)} MiB, ` +
      `input "clip" [${report.inputShape.join(', ')}] (normalised NCTHW), output "logits" [${report.outputShape.join(', ')}]`,
    `model config ${report.configSource}`,
  ];
  if (report.verification)
    lines.push(`${report.verification.ok ? 'verified' : 'VERIFICATION FAILED'}: ${report.verification.message}`);
  else lines.push(`not verified: ${report.skipped}`);
  return lines;
}

// `vswin export onnx CHECKPOINT OUT.onnx`: a subcommand of `vswin export` (whose own action writes
// cluster bundles); the work is in core/export/export-checkpoint.ts.
import type { Command } from 'commander';
import { intOption, resolveModelConfig, startBackend } from './shared.ts';

/** "224" or "58x50" (height x width). */
function sizeOption(value: string): [number, number] {
  const match = /^(\d+)(?:x(\d+))?$/.exec(value);
  const height = match ? Number(match[1]) : NaN;
  const width = match ? Number(match[2] ?? match[1]) : NaN;
  if (!(height >= 1 && width >= 1))
    throw new Error(`--size: expected S or HxW in pixels, e.g. 224 or 256x320; received "${value}"`);
  return [height, width];
}

export function registerExportOnnxCommand(program: Command): void {
  const exportCommand = program.commands.find((command) => command.name() === 'export');
  if (!exportCommand) throw new Error('the `export` command must be registered before its `onnx` subcommand');
  exportCommand
    .command('onnx')
    .description('write a checkpoint as an ONNX model (opset 17, static shapes) and check it in ONNX Runtime when installed')
    .argument('<checkpoint>', 'weights: official .pth or .safetensors (ours or foreign)')
    .argument('<out>', 'ONNX file to write')
    .option('--frames <n>', 'frames per clip', intOption('--frames', 1), 32)
    .option('--size <S|HxW>', 'crop size in pixels', sizeOption, [224, 224] as [number, number])
    .option('--batch <n>', 'clips per call', intOption('--batch', 1), 1)
    .option('--model-config <variant|file>', 'model config (default: stored in the checkpoint, else read off its shapes)')
    .option('--no-verify', 'do not run the file in ONNX Runtime')
    .action(
      async (
        checkpoint: string,
        out: string,
        options: { frames: number; size: [number, number]; batch: number; modelConfig?: string; verify: boolean },
        command: Command,
      ) => {
        await startBackend(command);
        const { exportCheckpointOnnx, describeExport } = await import('../../export/export-checkpoint.ts');
        const report = await exportCheckpointOnnx({
          checkpoint,
          out,
          frames: options.frames,
          height: options.size[0],
          width: options.size[1],
          batch: options.batch,
          modelConfig: options.modelConfig ? resolveModelConfig(options.modelConfig) : undefined,
          verify: options.verify ? undefined : false,
        });
        for (const line of describeExport(report)) process.stdout.write(`${line}\n`);
        if (report.verification && !report.verification.ok) process.exitCode = 1;
      },
    );
}

// `vswin forward` and `vswin model info`.
import type { Command } from 'commander';
import { tf } from '../../engine/tf.ts';
import { complexity } from '../../model/complexity.ts';
import { readModelConfigFile } from '../../model/config.ts';
import { VARIANTS } from '../../model/variants.ts';
import { createVideoSwin, describeLoadProblems } from '../../model/video-swin.ts';
import { readSafetensors, writeSafetensors } from '../../model/weights/safetensors.ts';
import { intOption, resolveModelConfig, startBackend } from './shared.ts';

const gib = (bytes: number) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
const flops = (n: number) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(1)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : `${(n / 1e3).toFixed(1)} k`;

export function registerModelCommands(program: Command): void {
  program
    .command('forward')
    .description('run a model in eval mode on a tensor from a safetensors file and write logits and backbone_out')
    .requiredOption(
      '--model-config <file>',
      'model config JSON: {"backbone": {...official SwinTransformer3D args}, "num_classes": N}',
    )
    .requiredOption('--checkpoint <file>', 'weights: official .pth (mmcv {meta, state_dict}, bare state_dict) or .safetensors')
    .requiredOption('--input <file>', 'safetensors file holding the F32 input clip(s), NCTHW')
    .option('--input-key <name>', 'tensor name of the input inside --input', 'input')
    .requiredOption('--output <file>', 'safetensors file to write: F32 "logits" and "backbone_out"')
    .action(
      async (
        opts: { modelConfig: string; checkpoint: string; input: string; inputKey: string; output: string },
        command: Command,
      ) => {
        const config = readModelConfigFile(opts.modelConfig);
        await startBackend(command);
        // Loaded lazily: the checkpoint readers are only needed by this command.
        const { loadCheckpoint } = await import('../../model/weights/checkpoint.ts');
        const checkpoint = loadCheckpoint(opts.checkpoint);
        const inputs = readSafetensors(opts.input).tensors;
        const x = inputs.get(opts.inputKey);
        if (!x) throw new Error(`${opts.input} has no tensor "${opts.inputKey}"; it holds: ${[...inputs.keys()].join(', ')}`);
        if (x.dtype !== 'float32' || x.shape.length !== 5) {
          throw new Error(
            `${opts.input}: "${opts.inputKey}" must be a float tensor [N, C, T, H, W]; received ${x.fileDtype} [${x.shape.join(', ')}]`,
          );
        }
        const model = createVideoSwin(config);
        try {
          const report = model.loadStateDict(checkpoint.stateDict);
          if (report.missing.length || report.unexpected.length)
            throw new Error(`${opts.checkpoint}: ${describeLoadProblems(report)}`);
          const started = performance.now();
          const { logits, backbone } = tf.tidy(() => {
            const result = model.forward(tf.tensor(x.data as Float32Array, x.shape, 'float32'));
            return { logits: result.logits, backbone: result.backboneOut };
          });
          const out = new Map([
            [
              'logits',
              {
                shape: [...logits.shape],
                data: (await logits.data()) as Float32Array,
                dtype: 'float32' as const,
                fileDtype: 'float32' as const,
              },
            ],
            [
              'backbone_out',
              {
                shape: [...backbone.shape],
                data: (await backbone.data()) as Float32Array,
                dtype: 'float32' as const,
                fileDtype: 'float32' as const,
              },
            ],
          ]);
          tf.dispose([logits, backbone]);
          writeSafetensors(opts.output, out, { source: 'vswin forward', checkpoint: opts.checkpoint });
          process.stderr.write(
            `forward: ${x.shape[0]} clip(s) [${x.shape.join(', ')}] in ${((performance.now() - started) / 1000).toFixed(2)} s -> ${opts.output}\n`,
          );
        } finally {
          model.dispose();
        }
      },
    );

  const model = program.command('model').description('model variants: sizes, FLOPs and memory');
  model
    .command('list')
    .description('list the built-in variants')
    .action(() => {
      for (const [name, variant] of Object.entries(VARIANTS)) process.stdout.write(`${name.padEnd(16)} ${variant.description}\n`);
    });
  model
    .command('info')
    .argument('<variant>', `a variant (${Object.keys(VARIANTS).join(', ')}) or a model config .json`)
    .description('parameters, FLOPs per view and activation memory for a clip size and batch')
    .option('--frames <n>', 'frames per clip', intOption('--frames', 1), 32)
    .option('--size <n>', 'crop height and width', intOption('--size', 1), 224)
    .option('--batch <n>', 'clips per batch (memory figures)', intOption('--batch', 1), 1)
    .option('--json', 'print JSON')
    .action((nameOrPath: string, opts: { frames: number; size: number; batch: number; json?: boolean }) => {
      const config = resolveModelConfig(nameOrPath);
      const info = complexity(config, { frames: opts.frames, height: opts.size, width: opts.size }, opts.batch);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ config, ...info }, null, 2)}\n`);
        return;
      }
      const b = config.backbone;
      const lines = [
        `${nameOrPath}: embed ${b.embed_dim}, depths ${b.depths.join('-')}, heads ${b.num_heads.join('-')}, window ${b.window_size.join('x')}, patch ${b.patch_size.join('x')}, ${config.num_classes} classes`,
        `parameters:        ${(info.parameters / 1e6).toFixed(2)} M (${info.parameters})`,
        `FLOPs per view:    ${flops(info.flopsPerView)} multiply-adds at ${opts.frames}x${opts.size}x${opts.size}`,
        `training memory:   ~${gib(info.trainingActivationBytes)} of activations kept for backward at batch ${opts.batch} (estimate), plus ${gib(info.parameters * 16)} for weights, gradients and AdamW state`,
        `inference peak:    ~${gib(info.inferencePeakBytes)} for one block's attention scores and probabilities at batch ${opts.batch} (estimate)`,
        '',
        'stage  grid (DxHxW)   dim  heads  depth  window   shift    windows/clip   FLOPs',
        ...info.stages.map(
          (s) =>
            `${String(s.stage).padEnd(7)}${s.geometry.grid.join('x').padEnd(15)}${String(s.dim).padEnd(5)}${String(s.heads).padEnd(7)}${String(s.depth).padEnd(7)}${s.geometry.window.join('x').padEnd(9)}${s.geometry.shift.join(',').padEnd(9)}${String(s.geometry.windowsPerClip).padEnd(15)}${flops(s.flops)}`,
        ),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

// CLI subcommands of the checkpoint area (`vswin checkpoint …`): inspect any weights file and
// convert it (optionally inflating 2-D ImageNet Swin weights) into our safetensors format.
import type { Command } from 'commander';
import { loadCheckpoint, saveCheckpoint } from '../../model/weights/checkpoint.ts';
import { writeEngineCheckpoint } from '../../model/weights/pth-writer.ts';
import { type Diagnosis, describeTraining, diagnoseLoaded } from '../../model/weights/doctor.ts';
import { describeInflation, inflate2dTo3d } from '../../model/weights/inflate.ts';
import type { TensorMap } from '../../model/weights/types.ts';
import { resolveModelConfig } from './shared.ts';

const kindWords: Record<Diagnosis['kind'], string> = {
  recognizer3d: '3-D recognizer (backbone + cls_head)',
  backbone3d: '3-D backbone only (no classification head)',
  swin2d: '2-D ImageNet Swin (needs inflation)',
  vswin: 'vswin checkpoint (our safetensors format)',
  unknown: 'not recognised as a Swin checkpoint',
};

const layoutWords: Record<Diagnosis['layout'], string> = {
  mmcv: 'mmcv {meta, state_dict}',
  bare: 'bare state dict',
  swin2d: '2-D Swin {model: state_dict}',
  vswin: 'safetensors with vswin metadata',
};

const size = (bytes: number) =>
  bytes >= 2 ** 30
    ? `${(bytes / 2 ** 30).toFixed(2)} GiB`
    : bytes >= 2 ** 20
      ? `${(bytes / 2 ** 20).toFixed(1)} MiB`
      : `${(bytes / 1024).toFixed(1)} KiB`;

function formatDiagnosis(diagnosis: Diagnosis): string {
  const lines = [
    `file:      ${diagnosis.path}`,
    `format:    ${diagnosis.format === 'pth' ? 'PyTorch torch.save (.pth zip)' : 'safetensors'}, ${layoutWords[diagnosis.layout]}`,
    `kind:      ${kindWords[diagnosis.kind]}${diagnosis.kind === 'vswin' ? (diagnosis.hasHead ? ', with classification head' : ', backbone only') : ''}`,
    `tensors:   ${diagnosis.tensorCount}, ${diagnosis.elementCount.toLocaleString('en-US')} elements, ${size(diagnosis.dataBytes)} (${Object.entries(
      diagnosis.fileDtypes,
    )
      .map(([dtype, count]) => `${count} ${dtype}`)
      .join(', ')})`,
  ];
  const guess = diagnosis.guessed;
  if (guess) {
    const parts = [
      `embed_dim ${guess.embed_dim}`,
      `depths [${guess.depths.join(', ')}]`,
      `num_heads [${guess.num_heads.join(', ')}]`,
      `window_size ${guess.window_size ? `[${guess.window_size.join(', ')}]` : 'unknown'}`,
      `patch_size [${guess.patch_size.join(', ')}]`,
      `mlp_ratio ${guess.mlp_ratio}`,
      `classes ${guess.num_classes ?? 'none'}`,
    ];
    lines.push(`guessed:   ${parts.join(', ')}`);
    if (diagnosis.variants.length) lines.push(`variants:  ${diagnosis.variants.join(', ')} (same architecture)`);
  }
  if (diagnosis.training) lines.push(`training:  ${describeTraining(diagnosis.training)}`);
  const metadata = Object.entries(diagnosis.metadata);
  if (metadata.length) {
    lines.push('metadata:');
    for (const [field, value] of metadata) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      const line = text.replace(/\n/g, '\\n');
      lines.push(`  ${field}: ${line.length > 100 ? `${line.slice(0, 97)}...` : line}`);
    }
  }
  if (diagnosis.comparison) {
    const { missing, unexpected, misshaped, against, loadsStrictly } = diagnosis.comparison;
    lines.push(
      `against the ${against}: ${missing.length} missing, ${unexpected.length} unexpected, ${misshaped.length} mis-shaped; ${loadsStrictly ? 'loads' : 'does not load'} strictly`,
    );
  }
  lines.push('findings:');
  for (const finding of diagnosis.findings) lines.push(`  [${finding.severity}] ${finding.message.replace(/\n/g, '\n  ')}`);
  return lines.join('\n');
}

export function registerCheckpointCommands(program: Command): void {
  const checkpoint = program
    .command('checkpoint')
    .description('inspect and convert weights files (.pth from PyTorch/mmaction, .safetensors)')
    .addHelpText(
      'after',
      `
Reads PyTorch torch.save files (mmcv {meta, state_dict}, bare state dicts, DDP "module." keys,
2-D Swin {model: ...}) without Python, and safetensors. Nothing inside a .pth is executed.
Examples:
  vswin checkpoint inspect swin_tiny_patch244_window877_kinetics400_1k.pth
  vswin checkpoint inspect model.pth --model-config cfg.json
  vswin checkpoint convert model.pth model.safetensors
  vswin checkpoint convert swin_tiny_patch4_window7_224.pth backbone.safetensors --inflate --model-config cfg.json
`,
    );

  checkpoint
    .command('inspect')
    .description('say what a checkpoint is, guess its config from the shapes, and (with --model-config) what would not load')
    .argument('<file>', '.pth or .safetensors file')
    .option(
      '--model-config <file>',
      'model config JSON ({"backbone": {...}, "num_classes": N}) or variant name (swin_t, ...) to check the file against',
    )
    .option('--json', 'print the diagnosis as JSON')
    .addHelpText('after', '\nExit status: 0 when no finding is an error, 1 otherwise (or when the file cannot be read).\n')
    .action((file: string, opts: { modelConfig?: string; json?: boolean }) => {
      const config = opts.modelConfig ? resolveModelConfig(opts.modelConfig) : undefined;
      const diagnosis = diagnoseLoaded(loadCheckpoint(file), config);
      process.stdout.write(opts.json ? `${JSON.stringify(diagnosis, null, 2)}\n` : `${formatDiagnosis(diagnosis)}\n`);
      if (diagnosis.findings.some((finding) => finding.severity === 'error')) process.exitCode = 1;
    });

  checkpoint
    .command('convert')
    .description(
      'write any readable checkpoint as a vswin safetensors file; --inflate turns 2-D ImageNet Swin weights into a 3-D backbone',
    )
    .argument('<in>', '.pth or .safetensors input')
    .argument(
      '<out>',
      'output, written atomically: .pth = a torch.save {meta, state_dict} file for PyTorch/mmaction2, else safetensors',
    )
    .option('--flavor <flavor>', 'key names of a .pth output: 1.x (mmaction2 1.x, backbone.norm3) or 0.x (backbone.norm)', '1.x')
    .option('--inflate', 'inflate a 2-D Swin checkpoint into 3-D backbone weights (keys "backbone.*"); needs --model-config')
    .option(
      '--model-config <file>',
      'model config JSON or variant name; stored in the output metadata, and the 3-D target of --inflate',
    )
    .addHelpText(
      'after',
      `
Without --inflate the state dict is copied as is (int64 buffers stay I64) and the source's metadata
is kept under "source_meta". With --inflate the output holds the 3-D backbone exactly as the
official inflate_weights builds it: patch embedding split over time, bias tables bicubic-resized
(when windows differ) and tiled, 2-D buffers dropped, the ImageNet head left out.
`,
    )
    .action((input: string, output: string, opts: { inflate?: boolean; modelConfig?: string; flavor: string }) => {
      if (opts.flavor !== '1.x' && opts.flavor !== '0.x')
        throw new Error(`--flavor: expected "1.x" or "0.x", received ${JSON.stringify(opts.flavor)}`);
      const config = opts.modelConfig ? resolveModelConfig(opts.modelConfig) : undefined;
      if (opts.inflate && !config)
        throw new Error('--inflate needs --model-config CFG.json: the 3-D window and patch size come from the config');
      const loaded = loadCheckpoint(input);
      for (const note of loaded.notes) process.stderr.write(`note: ${note}\n`);
      const metadata: Record<string, unknown> = { source: input, source_format: loaded.format, source_layout: loaded.layout };
      if (Object.keys(loaded.metadata).length) metadata.source_meta = loaded.metadata;
      let stateDict: TensorMap;
      if (opts.inflate) {
        const diagnosis = diagnoseLoaded(loaded);
        if (diagnosis.kind !== 'swin2d') {
          throw new Error(
            `${input} is a ${kindWords[diagnosis.kind]}, not 2-D Swin weights; --inflate only applies to 2-D checkpoints (drop --inflate to convert it as is)`,
          );
        }
        const { stateDict: inflated, report } = inflate2dTo3d(loaded.stateDict, config!.backbone);
        const lines = describeInflation(report);
        if (report.mismatched.length)
          throw new Error(`${input} cannot be inflated into ${opts.modelConfig}:\n  ${lines.join('\n  ')}`);
        for (const line of lines) process.stderr.write(`inflate: ${line}\n`);
        stateDict = new Map([...inflated].map(([key, tensor]) => [`backbone.${key}`, tensor]));
        metadata.inflated_from_2d = true;
        metadata.inflation = {
          resized: report.resized.length,
          tiled: report.tiled.length,
          ignored: report.ignored.map((entry) => entry.key),
          missing: report.missing,
        };
      } else {
        stateDict = loaded.stateDict;
        const diagnosis = diagnoseLoaded(loaded, config);
        const prefixed = [...stateDict.keys()].some((key) => key.startsWith('backbone.'));
        if (diagnosis.kind === 'backbone3d' && !prefixed) {
          // The model's parameter names are the recognizer's (`backbone.*`), so the output loads as is.
          stateDict = new Map([...stateDict].map(([key, tensor]) => [`backbone.${key}`, tensor]));
          process.stderr.write('note: added the "backbone." prefix to every key of this backbone-only file\n');
        }
        if (diagnosis.kind === 'swin2d')
          process.stderr.write(
            'note: these are 2-D ImageNet Swin weights; add --inflate --model-config CFG.json to get 3-D backbone weights\n',
          );
        for (const finding of diagnosis.findings)
          if (finding.severity !== 'info') process.stderr.write(`${finding.severity}: ${finding.message}\n`);
      }
      if (config) metadata.config = config;
      else if (loaded.layout === 'vswin' && loaded.metadata.config !== undefined) metadata.config = loaded.metadata.config;
      if (/\.pth$/i.test(output)) writeEngineCheckpoint(output, stateDict, opts.flavor, metadata);
      else saveCheckpoint(output, stateDict, metadata, { keepInt64: true });
      const bytes = [...stateDict.values()].reduce((total, tensor) => total + tensor.data.byteLength, 0);
      process.stdout.write(`wrote ${output}: ${stateDict.size} tensors, ${size(bytes)}\n`);
    });
}

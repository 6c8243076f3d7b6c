// Model configuration: the official SwinTransformer3D constructor arguments (snake_case, as in the
// mmaction2 configs and the parity manifest) plus the I3D head's class count.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { IssuesError, issuesOf } from '../protocol/issues.ts';

/**
 * Bounds on every size a config may ask for. Configs arrive from files (a checkpoint's metadata, a
 * run's stored config), and a `depths: [2000000]` would otherwise build millions of blocks before
 * anything fails; the bounds sit far above every published Video Swin (Swin-L: embed 192, 24 blocks).
 */
export const modelLimits = {
  stages: 8,
  blocksPerStage: 64,
  blocks: 128,
  embedDim: 1024,
  stageDim: 16384,
  heads: 256,
  window: 64,
  patch: 64,
  inChannels: 64,
  mlpRatio: 64,
  classes: 100_000,
} as const;

const bounded = (max: number, what: string) =>
  z
    .number()
    .int()
    .positive()
    .max(max, { message: `${what} must be at most ${max}` });
const triple = (max: number, what: string) => z.tuple([bounded(max, what), bounded(max, what), bounded(max, what)]);

export const backboneConfigSchema = z
  .object({
    patch_size: triple(modelLimits.patch, 'a patch size'),
    in_chans: bounded(modelLimits.inChannels, 'in_chans').default(3),
    embed_dim: bounded(modelLimits.embedDim, 'embed_dim'),
    depths: z
      .array(
        z
          .number()
          .int()
          .nonnegative()
          .max(modelLimits.blocksPerStage, { message: `a stage may hold at most ${modelLimits.blocksPerStage} blocks` }),
      )
      .min(1)
      .max(modelLimits.stages, { message: `at most ${modelLimits.stages} stages` }),
    num_heads: z
      .array(bounded(modelLimits.heads, 'a head count'))
      .min(1)
      .max(modelLimits.stages, { message: `at most ${modelLimits.stages} stages` }),
    window_size: triple(modelLimits.window, 'a window size'),
    mlp_ratio: z.number().positive().max(modelLimits.mlpRatio).default(4),
    qkv_bias: z.boolean().default(true),
    qk_scale: z.number().positive().nullable().default(null),
    drop_rate: z.number().min(0).max(1).default(0),
    attn_drop_rate: z.number().min(0).max(1).default(0),
    drop_path_rate: z.number().min(0).max(1).default(0.1),
    patch_norm: z.boolean().default(true),
  })
  .superRefine((cfg, ctx) => {
    const blocks = cfg.depths.reduce((sum, depth) => sum + depth, 0);
    if (blocks > modelLimits.blocks)
      ctx.addIssue({
        code: 'custom',
        path: ['depths'],
        message: `${blocks} blocks in all; at most ${modelLimits.blocks} are accepted`,
      });
    const widest = cfg.embed_dim * 2 ** (cfg.depths.length - 1);
    if (widest > modelLimits.stageDim)
      ctx.addIssue({
        code: 'custom',
        path: ['embed_dim'],
        message: `the last stage would be ${widest} wide (embed_dim x 2^(stages-1)); at most ${modelLimits.stageDim} is accepted`,
      });
    if (cfg.depths.length !== cfg.num_heads.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['num_heads'],
        message: `num_heads has ${cfg.num_heads.length} entries but depths has ${cfg.depths.length}; one per stage is expected`,
      });
    }
    cfg.num_heads.forEach((heads, stage) => {
      const dim = cfg.embed_dim * 2 ** stage;
      if (dim % heads !== 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['num_heads', stage],
          message: `stage ${stage} has dim ${dim}, which ${heads} heads do not divide`,
        });
      }
    });
  });

export const modelConfigSchema = z.object({
  backbone: backboneConfigSchema,
  num_classes: bounded(modelLimits.classes, 'num_classes'),
  /** Dropout before fc_cls (I3DHead); 0.5 in every official config, identity at eval. */
  head_dropout: z.number().min(0).max(1).default(0.5),
});

export type BackboneConfig = z.output<typeof backboneConfigSchema>;
export type ModelConfig = z.output<typeof modelConfigSchema>;
export type ModelConfigInput = z.input<typeof modelConfigSchema>;

/** Validates a parsed JSON model config; the error names each bad field, its value and what is allowed. */
export function parseModelConfig(value: unknown, source = 'model config'): ModelConfig {
  const result = modelConfigSchema.safeParse(value);
  if (result.success) return result.data;
  throw new IssuesError(source, issuesOf(result.error, value));
}

/** Channel width of stage i. */
export const stageDim = (cfg: BackboneConfig, stage: number): number => cfg.embed_dim * 2 ** stage;
/** Channel width of the backbone output (C * 2^(stages-1)). */
export const numFeatures = (cfg: BackboneConfig): number => stageDim(cfg, cfg.depths.length - 1);

/** Reads and validates a model config JSON file (the shape of `config` in the parity manifest). */
export function readModelConfigFile(path: string): ModelConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read model config ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`model config ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseModelConfig(json, `model config ${path}`);
}

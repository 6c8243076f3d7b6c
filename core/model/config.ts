// Model configuration: the official SwinTransformer3D constructor arguments (snake_case, as in the
// mmaction2 configs and the parity manifest) plus the I3D head's class count.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { IssuesError, issuesOf } from '../protocol/issues.ts';

const triple = z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]);

export const backboneConfigSchema = z
  .object({
    patch_size: triple,
    in_chans: z.number().int().positive().default(3),
    embed_dim: z.number().int().positive(),
    depths: z.array(z.number().int().nonnegative()).min(1),
    num_heads: z.array(z.number().int().positive()).min(1),
    window_size: triple,
    mlp_ratio: z.number().positive().default(4),
    qkv_bias: z.boolean().default(true),
    qk_scale: z.number().positive().nullable().default(null),
    drop_rate: z.number().min(0).max(1).default(0),
    attn_drop_rate: z.number().min(0).max(1).default(0),
    drop_path_rate: z.number().min(0).max(1).default(0.1),
    patch_norm: z.boolean().default(true),
  })
  .superRefine((cfg, ctx) => {
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
  num_classes: z.number().int().positive(),
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

// Variants as data (architecture.md, convention 5): the released configs and small CPU presets.
import type { ModelConfigInput } from './config.ts';

const official = {
  patch_size: [2, 4, 4],
  in_chans: 3,
  mlp_ratio: 4,
  qkv_bias: true,
  qk_scale: null,
  drop_rate: 0,
  attn_drop_rate: 0,
  patch_norm: true,
} as const;

export interface Variant {
  description: string;
  config: ModelConfigInput;
}

export const VARIANTS: Record<string, Variant> = {
  swin_t: {
    description: 'Swin-T, Kinetics-400 (28M params, window 8x7x7, drop path 0.1)',
    config: {
      backbone: {
        ...official,
        patch_size: [2, 4, 4],
        embed_dim: 96,
        depths: [2, 2, 6, 2],
        num_heads: [3, 6, 12, 24],
        window_size: [8, 7, 7],
        drop_path_rate: 0.1,
      },
      num_classes: 400,
    },
  },
  swin_s: {
    description: 'Swin-S, Kinetics-400 (50M params, window 8x7x7, drop path 0.1)',
    config: {
      backbone: {
        ...official,
        patch_size: [2, 4, 4],
        embed_dim: 96,
        depths: [2, 2, 18, 2],
        num_heads: [3, 6, 12, 24],
        window_size: [8, 7, 7],
        drop_path_rate: 0.1,
      },
      num_classes: 400,
    },
  },
  swin_b: {
    description: 'Swin-B, Kinetics-400 from ImageNet-1K (88M params, window 8x7x7, drop path 0.3)',
    config: {
      backbone: {
        ...official,
        patch_size: [2, 4, 4],
        embed_dim: 128,
        depths: [2, 2, 18, 2],
        num_heads: [4, 8, 16, 32],
        window_size: [8, 7, 7],
        drop_path_rate: 0.3,
      },
      num_classes: 400,
    },
  },
  swin_b_k400_22k: {
    description: 'Swin-B, Kinetics-400 from ImageNet-22K (drop path 0.2)',
    config: {
      backbone: {
        ...official,
        patch_size: [2, 4, 4],
        embed_dim: 128,
        depths: [2, 2, 18, 2],
        num_heads: [4, 8, 16, 32],
        window_size: [8, 7, 7],
        drop_path_rate: 0.2,
      },
      num_classes: 400,
    },
  },
  swin_b_k600: {
    description: 'Swin-B, Kinetics-600 from ImageNet-22K (drop path 0.2)',
    config: {
      backbone: {
        ...official,
        patch_size: [2, 4, 4],
        embed_dim: 128,
        depths: [2, 2, 18, 2],
        num_heads: [4, 8, 16, 32],
        window_size: [8, 7, 7],
        drop_path_rate: 0.2,
      },
      num_classes: 600,
    },
  },
  swin_b_ssv2: {
    description: 'Swin-B, Something-Something v2 (window 16x7x7, 174 classes, drop path 0.4)',
    config: {
      backbone: {
        ...official,
        patch_size: [2, 4, 4],
        embed_dim: 128,
        depths: [2, 2, 18, 2],
        num_heads: [4, 8, 16, 32],
        window_size: [16, 7, 7],
        drop_path_rate: 0.4,
      },
      num_classes: 174,
    },
  },
  tiny: {
    description: 'small CPU preset (embed 32, depths 2-2-2-2, window 2x7x7) for quick experiments',
    config: {
      backbone: {
        ...official,
        patch_size: [2, 4, 4],
        embed_dim: 32,
        depths: [2, 2, 2, 2],
        num_heads: [1, 2, 4, 8],
        window_size: [2, 7, 7],
        drop_path_rate: 0.1,
      },
      num_classes: 10,
    },
  },
  micro: {
    description: 'smallest CPU preset (embed 16, depths 2-2-2-2, window 2x4x4) for the demo and tests',
    config: {
      backbone: {
        ...official,
        patch_size: [2, 4, 4],
        embed_dim: 16,
        depths: [2, 2, 2, 2],
        num_heads: [1, 2, 4, 8],
        window_size: [2, 4, 4],
        drop_path_rate: 0.0,
      },
      num_classes: 4,
    },
  },
};

export function variantNames(): string[] {
  return Object.keys(VARIANTS);
}

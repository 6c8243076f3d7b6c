// AdamW exactly as torch.optim.AdamW (decoupled decay applied before the Adam update, bias
// correction with the step count), one LR/decay per parameter from the paramwise groups. Moments
// are tensors owned by the optimizer; their host copies go into checkpoints so resume is exact.
import { fusedAdamWUpdate } from '../engine/kernels/optimizer.ts';
import { tf, type Tensor } from '../engine/tf.ts';
import type { HostTensor, TensorMap } from '../model/weights/types.ts';
import type { ParamGroup } from './param-groups.ts';

export interface AdamWOptions {
  betas: [number, number];
  eps: number;
}

interface Moments {
  expAvg: Tensor;
  expAvgSq: Tensor;
}

export class AdamW {
  private moments = new Map<string, Moments>();
  private stepCount = 0;

  constructor(
    private readonly params: Map<string, tf.Variable>,
    readonly groups: Map<string, ParamGroup>,
    private readonly options: AdamWOptions,
  ) {
    for (const name of params.keys()) {
      if (!groups.has(name)) throw new Error(`AdamW: parameter "${name}" has no parameter group`);
    }
  }

  /** Optimizer steps taken so far (PyTorch's `state['step']`). */
  get steps(): number {
    return this.stepCount;
  }

  /**
   * One update. `lrOf` maps a group to the LR in effect now (the schedule applied to the group's
   * initial LR). Parameters without a gradient are left untouched, as PyTorch does. The caller
   * keeps ownership of `grads`.
   */
  step(grads: Map<string, Tensor>, lrOf: (group: ParamGroup) => number): void {
    this.stepCount += 1;
    const [beta1, beta2] = this.options.betas;
    // Scalars in float64 like PyTorch's Python-side arithmetic; only the final factors are rounded.
    const correction1 = 1 - beta1 ** this.stepCount;
    const correction2Sqrt = Math.sqrt(1 - beta2 ** this.stepCount);
    for (const [name, variable] of this.params) {
      const grad = grads.get(name);
      if (!grad) continue;
      const group = this.groups.get(name) as ParamGroup;
      const lr = lrOf(group);
      const previous = this.moments.get(name);
      // One pass on a kernel tier that has the fused update, the same arithmetic from ordinary ops elsewhere.
      const updated = fusedAdamWUpdate(variable, grad, previous?.expAvg ?? null, previous?.expAvgSq ?? null, {
        lr,
        beta1,
        beta2,
        eps: this.options.eps,
        weightDecay: group.weightDecay,
        correction1,
        correction2Sqrt,
      });
      variable.assign(updated.param);
      updated.param.dispose();
      const next = { expAvg: updated.expAvg, expAvgSq: updated.expAvgSq };
      if (previous) {
        previous.expAvg.dispose();
        previous.expAvgSq.dispose();
      }
      this.moments.set(name, next);
    }
  }

  /** Host copy of the state: `exp_avg.<name>` / `exp_avg_sq.<name>` plus the step count. */
  async state(): Promise<{ steps: number; tensors: TensorMap }> {
    const tensors: TensorMap = new Map();
    for (const [name, moments] of this.moments) {
      tensors.set(`exp_avg.${name}`, await toHost(moments.expAvg));
      tensors.set(`exp_avg_sq.${name}`, await toHost(moments.expAvgSq));
    }
    return { steps: this.stepCount, tensors };
  }

  /** Restores a state written by `state()`; shapes are checked against the parameters. */
  loadState(steps: number, tensors: TensorMap, source = 'optimizer state'): void {
    this.disposeMoments();
    for (const [name, variable] of this.params) {
      const expAvg = tensors.get(`exp_avg.${name}`);
      const expAvgSq = tensors.get(`exp_avg_sq.${name}`);
      if (!expAvg && !expAvgSq) continue;
      if (!expAvg || !expAvgSq) throw new Error(`${source}: "${name}" has only one of exp_avg / exp_avg_sq`);
      for (const [label, host] of [
        ['exp_avg', expAvg],
        ['exp_avg_sq', expAvgSq],
      ] as const) {
        if (host.shape.join(',') !== variable.shape.join(',')) {
          throw new Error(`${source}: ${label}.${name} has shape [${host.shape}], expected [${variable.shape}]`);
        }
      }
      this.moments.set(name, {
        expAvg: tf.tensor(expAvg.data as Float32Array, expAvg.shape, 'float32'),
        expAvgSq: tf.tensor(expAvgSq.data as Float32Array, expAvgSq.shape, 'float32'),
      });
    }
    this.stepCount = steps;
  }

  dispose(): void {
    this.disposeMoments();
  }

  private disposeMoments(): void {
    for (const moments of this.moments.values()) {
      moments.expAvg.dispose();
      moments.expAvgSq.dispose();
    }
    this.moments.clear();
  }
}

async function toHost(tensor: Tensor): Promise<HostTensor> {
  return { shape: [...tensor.shape], data: (await tensor.data()) as Float32Array, dtype: 'float32', fileDtype: 'float32' };
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm`, as torch.nn.utils.clip_grad_norm_
 * does: every gradient times min(1, max/(norm+1e-6)), computed on the device (no read back; a
 * factor of exactly 1 leaves the values unchanged). Returns the norm before clipping as a scalar
 * tensor and the new map; the caller owns both (the old gradients are disposed here).
 */
export function clipGradNorm(grads: Map<string, Tensor>, maxNorm: number): { norm: tf.Scalar; grads: Map<string, Tensor> } {
  // Pairwise adds, not one AddN: a WebGPU shader binds at most 8 buffers, and tfjs-webgpu's AddN
  // over every parameter's gradient fails validation there (the sum would be silently wrong).
  const norm = tf.tidy(() =>
    tf.sqrt([...grads.values()].map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b))),
  ) as tf.Scalar;
  const coefficient = tf.tidy(() => tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1));
  const out = new Map<string, Tensor>();
  for (const [name, grad] of grads) {
    out.set(name, tf.mul(grad, coefficient));
    grad.dispose();
  }
  coefficient.dispose();
  return { norm, grads: out };
}

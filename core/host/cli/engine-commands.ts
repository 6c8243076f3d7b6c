// `vswin doctor`: what this machine runs and why.
import type { Command } from 'commander';
import { startBackend } from './shared.ts';
import { cudaStatus, webGpuStatus } from '../../engine/backend.ts';
import { tf } from '../../engine/tf.ts';
import { fastKernelStatus } from '../../engine/kernels/index.ts';

export function registerEngineCommands(program: Command): void {
  program
    .command('doctor')
    .description('report the compute backend in use and why it was chosen')
    .action(async (_opts, command: Command) => {
      const choice = await startBackend(command, true);
      const gpu = await webGpuStatus();
      const lines = [
        `backend:  ${choice.name} (${choice.provider})`,
        `reason:   ${choice.reason}`,
        `kernels:  ${choice.name === 'webgpu' ? describeWebGpuKernels(choice.kernels ?? []) : describeKernels()}`,
        `webgpu:   ${gpu.description}`,
        `          ${choice.name === 'webgpu' ? 'in use' : gpu.verdict}`,
        `cuda:     @tensorflow/tfjs-node-gpu ${cudaStatus()}`,
        `tfjs:     ${tf.version.tfjs}`,
        `node:     ${process.version} ${process.platform}-${process.arch}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

function describeWebGpuKernels(kernels: string[]): string {
  return kernels.length
    ? `fused WGSL kernels ${kernels.join(', ')}; tfjs-webgpu's for the rest`
    : 'tfjs-webgpu kernels only (VSWIN_KERNELS=stock)';
}

function describeKernels(): string {
  const status = fastKernelStatus();
  if (status.tier === 'stock') return `stock TensorFlow.js kernels (${status.reason})`;
  return `${status.tier} tier, ${status.isa ?? 'portable'} code on ${status.threads ?? 1} threads (${status.reason}); replaces ${status.kernels.join(', ')}`;
}

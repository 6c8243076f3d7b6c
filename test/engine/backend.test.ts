import { describe, expect, it } from 'vitest';
import { cudaStatus, initBackend, parseBackendRequest, webGpuStatus } from '../../core/engine/backend.ts';
import { tf } from '../../core/engine/tf.ts';
import { isSoftwareAdapter } from '../../core/engine/webgpu/adapter.ts';
import { checkWebGpuBinding } from '../../core/engine/webgpu/backend.ts';
import { webGpuSkipReason } from './webgpu/available.ts';

describe('backend choice', () => {
  it('parses requests and rejects unknown names with the value received', () => {
    expect(parseBackendRequest(undefined, 'x')).toBe('auto');
    expect(parseBackendRequest('wasm', 'x')).toBe('wasm');
    expect(() => parseBackendRequest('gpu', '--backend')).toThrow(
      /--backend: unknown backend "gpu"; expected one of auto, tensorflow, webgpu, wasm, cpu/,
    );
  });

  it('falls back to wasm when native TensorFlow is not installed, and says why', async () => {
    const choice = await initBackend('auto');
    if (choice.name === 'tensorflow') {
      expect(choice.provider).toMatch(/tfjs-node/);
    } else {
      expect(choice.name).toBe('wasm');
      expect(choice.reason).toMatch(/native TensorFlow unavailable/);
    }
    expect(tf.getBackend()).toBe(choice.name);
  });

  it('honours an explicit request and the environment variable', async () => {
    expect((await initBackend('cpu')).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    process.env.VSWIN_BACKEND = 'wasm';
    try {
      const choice = await initBackend();
      expect(choice).toMatchObject({ name: 'wasm', reason: 'requested with VSWIN_BACKEND' });
    } finally {
      delete process.env.VSWIN_BACKEND;
    }
  });
});

describe('the webgpu backend', () => {
  const skip = webGpuSkipReason('test/engine/backend.test.ts');

  it('tells software rasterisers from GPUs by the adapter info', () => {
    expect(isSoftwareAdapter({ vendor: 'mesa', architecture: 'software', description: 'llvmpipe: Mesa 25.0.7' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'google', description: 'SwiftShader Device (Subzero)' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'ampere', description: 'NVIDIA GeForce RTX 3080' })).toBe(false);
    expect(
      isSoftwareAdapter({ vendor: 'amd', architecture: 'rdna-3', description: 'AMD Radeon RX 7900', isFallbackAdapter: true }),
    ).toBe(true);
  });

  it.skipIf(skip !== null)('names the adapter, its limits and why auto did or did not take it', async () => {
    const status = await webGpuStatus();
    const adapter = status.adapter!;
    expect(status.description).toContain(adapter.vendor);
    expect(status.description).toMatch(/max buffer \d+ MiB, max storage binding \d+ MiB/);
    expect(adapter.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(status.preferred).toBe(!adapter.software);
    const auto = await initBackend('auto');
    if (adapter.software) {
      expect(status.verdict).toMatch(/software rasteriser, not chosen/);
      expect(auto.name).not.toBe('webgpu');
      expect(auto.reason).toContain(status.verdict);
    } else {
      expect(auto.name === 'webgpu' || auto.provider === '@tensorflow/tfjs-node-gpu').toBe(true);
    }
  });

  it.skipIf(skip !== null)('starts on request and computes on the adapter', async () => {
    process.env.VSWIN_BACKEND = 'webgpu';
    let choice;
    try {
      choice = await initBackend();
      expect(choice).toMatchObject({ name: 'webgpu', reason: expect.stringMatching(/^requested with VSWIN_BACKEND/) });
      expect(choice.adapter?.description).toBe((await webGpuStatus()).adapter?.description);
    } finally {
      delete process.env.VSWIN_BACKEND;
    }
    expect(tf.getBackend()).toBe('webgpu');
    // A tensor past the adapter's binding limit is refused with the sizes, not computed wrongly.
    const limit = choice.adapter!.limits.maxStorageBufferBindingSize;
    expect(() => checkWebGpuBinding(limit / 4, 'scores')).not.toThrow();
    expect(() => checkWebGpuBinding(limit / 4 + 1, 'scores')).toThrow(
      /scores needs a \d+ MiB buffer, above this WebGPU adapter's maxStorageBufferBindingSize/,
    );
    const x = tf.range(0, 4096);
    const y = tf.sum(tf.mul(x, x));
    expect((await y.data())[0]).toBe((4095 * 4096 * 8191) / 6);
    tf.dispose([x, y]);
    await initBackend('wasm');
  });

  it('says that the CUDA route is untested here', () => {
    expect(cudaStatus()).toMatch(/untested by this project's CI/);
  });
});

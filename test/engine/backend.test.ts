import { describe, expect, it } from 'vitest';
import { initBackend, parseBackendRequest } from '../../core/engine/backend.ts';
import { tf } from '../../core/engine/tf.ts';

describe('backend choice', () => {
  it('parses requests and rejects unknown names with the value received', () => {
    expect(parseBackendRequest(undefined, 'x')).toBe('auto');
    expect(parseBackendRequest('wasm', 'x')).toBe('wasm');
    expect(() => parseBackendRequest('gpu', '--backend')).toThrow(
      /--backend: unknown backend "gpu"; expected one of auto, tensorflow, wasm, cpu/,
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

/// <reference types="@webgpu/types" />
// WebGPU adapter discovery through Dawn's Node bindings (the optional `webgpu` package). Finds the
// adapter, says what it is (vendor, architecture, description, the limits that bound a model's
// tensors) and whether it is a real GPU or a software rasteriser (llvmpipe, SwiftShader), which
// `auto` must not prefer over wasm. Nothing here starts a TensorFlow.js backend (see backend.ts).
import { mkdirSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** The limits that matter for a model: a tensor is one buffer, bound whole to a shader. */
export interface WebGpuLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupsPerDimension: number;
}

export interface WebGpuAdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software rasteriser (llvmpipe, lavapipe, SwiftShader, WARP): correct, much slower than wasm. */
  software: boolean;
  limits: WebGpuLimits;
}

export type WebGpuProbe =
  | { ok: true; gpu: GPU; adapter: GPUAdapter; summary: WebGpuAdapterSummary }
  | { ok: false; reason: string; missing: 'package' | 'adapter' | 'error' };

/** What to install when no adapter is found, per platform; shown by doctor and in the error. */
export const WEBGPU_INSTALL_HINT =
  'Linux: a Vulkan driver and loader (Debian/Ubuntu: libvulkan1 plus the NVIDIA driver, or mesa-vulkan-drivers >= 23 for AMD/Intel; ' +
  'Debian bookworm needs it from bookworm-backports, see scripts/prereqs/webgpu.sh); Windows: a current GPU driver (D3D12); ' +
  'macOS: nothing (Metal). The npm package `webgpu` (an optional dependency) must be installed.';

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render|warp/i;

/** Whether an adapter's info names a software implementation. */
export function isSoftwareAdapter(info: {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}): boolean {
  if (info.isFallbackAdapter === true) return true;
  return SOFTWARE_NAMES.test([info.architecture, info.device, info.description].filter(Boolean).join(' '));
}

interface DawnModule {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

let dawn: DawnModule | null = null;
let probe: Promise<WebGpuProbe> | null = null;

/**
 * Dawn prints errors when XDG_RUNTIME_DIR is unset or unwritable (it looks for a Wayland/X socket);
 * a private directory under the temp dir quiets it without changing anything else.
 */
function ensureRuntimeDir(): void {
  if (process.env.XDG_RUNTIME_DIR) return;
  const dir = join(tmpdir(), `vswin-xdg-runtime-${userInfo().uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

/** Loads Dawn and puts the WebGPU constants (GPUBufferUsage, GPUMapMode, ...) on globalThis. */
export async function loadDawn(): Promise<DawnModule | { error: string }> {
  if (dawn) return dawn;
  try {
    const module = (await import('webgpu')) as unknown as DawnModule;
    ensureRuntimeDir();
    // tfjs-backend-webgpu reads these as globals, as in a browser.
    for (const [name, value] of Object.entries(module.globals)) {
      if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
    }
    dawn = module;
    return module;
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    return { error: /Cannot find (module|package)/.test(message) ? 'the npm package `webgpu` is not installed' : message };
  }
}

function summarise(adapter: GPUAdapter): WebGpuAdapterSummary {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const limits = adapter.limits;
  return {
    vendor: info.vendor || 'unknown vendor',
    architecture: info.architecture || 'unknown architecture',
    device: info.device || '',
    description: info.description || '',
    software: isSoftwareAdapter(info),
    limits: {
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
    },
  };
}

/** Asks Dawn for its high-performance adapter once per process (cached, including a failure). */
export function probeWebGpu(): Promise<WebGpuProbe> {
  probe ??= (async (): Promise<WebGpuProbe> => {
    const loaded = await loadDawn();
    if ('error' in loaded) return { ok: false, missing: 'package', reason: loaded.error };
    try {
      const gpu = loaded.create([]);
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) {
        return {
          ok: false,
          missing: 'adapter',
          reason: 'Dawn found no WebGPU adapter (no Vulkan, Metal or D3D12 driver it accepts)',
        };
      }
      return { ok: true, gpu, adapter, summary: summarise(adapter) };
    } catch (error) {
      return { ok: false, missing: 'error', reason: `Dawn failed to list adapters: ${(error as Error).message.split('\n')[0]}` };
    }
  })();
  return probe;
}

const mebibytes = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

/** One line naming the adapter, e.g. for doctor: "mesa software (llvmpipe: Mesa 25.0.7 ...), software". */
export function describeAdapter(summary: WebGpuAdapterSummary): string {
  const kind = summary.software ? 'software rasteriser' : 'GPU';
  const limits = `max buffer ${mebibytes(summary.limits.maxBufferSize)}, max storage binding ${mebibytes(summary.limits.maxStorageBufferBindingSize)}`;
  return `${summary.vendor} ${summary.architecture} (${summary.description || summary.device || 'no description'}), ${kind}; ${limits}`;
}

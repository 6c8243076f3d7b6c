// Whether this machine has a WebGPU adapter for the webgpu tests. Where none can be had, the tests
// skip and this prints why (never silently); CI installs one (scripts/prereqs/webgpu.sh).
import { probeWebGpu, WEBGPU_INSTALL_HINT } from '../../../core/engine/webgpu/adapter.ts';

const found = await probeWebGpu();

/** Null when an adapter exists, else why the webgpu tests of `file` skip. */
export function webGpuSkipReason(file: string): string | null {
  if (found.ok) return null;
  const reason = `${file}: webgpu tests SKIPPED, no WebGPU adapter: ${found.reason}. Install: ${WEBGPU_INSTALL_HINT}`;
  process.stderr.write(`${reason}\n`);
  return reason;
}

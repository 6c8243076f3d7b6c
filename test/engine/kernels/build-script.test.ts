import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../../../scripts/build-native.mjs', import.meta.url));

function run(env: Record<string, string>): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('install-time build of the native addon', () => {
  it('without a C compiler it explains and exits 0, so npm install still succeeds', () => {
    const { status, output } = run({ CC: '/nonexistent/cc' });
    expect(status).toBe(0);
    expect(output).toMatch(
      /\[vswin native kernels\] not built: missing a C compiler \(\/nonexistent\/cc\); the project will run on the WebAssembly SIMD kernel tier instead/,
    );
  });

  it('can be skipped explicitly', () => {
    const { status, output } = run({ VSWIN_SKIP_NATIVE: '1' });
    expect(status).toBe(0);
    expect(output).toContain('skipped (VSWIN_SKIP_NATIVE=1)');
  });
});

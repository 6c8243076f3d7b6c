// npm run bench:ui — the UI's live charts in Debian's Chromium:
//  1. 20 runs x 100,000 points overlaid, then points streaming at 50 per second: frame times
//     (target: median under 16 ms), measured with requestAnimationFrame in the page;
//  2. a real training run of the demo model: time from a training event leaving the core service
//     to its point being drawn by Plotly (Date.now() on both sides, same machine).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { launchWorkbench, UI_DIR } from '../core/host/service/launch.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

interface BenchResult {
  frameTimes: number[];
  setupMs: number;
  pointsDrawn: number;
  flushes: number;
  redraws: number;
  traceType: string;
  updateMs: number[];
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function main(): Promise<void> {
  if (!existsSync(join(UI_DIR, 'bench.html')))
    throw new Error('renderer/dist/bench.html is missing: run `npm run build:ui` first');
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  const home = mkdtempSync(join(tmpdir(), 'vswin-bench-ui-'));
  const profile = mkdtempSync(join(tmpdir(), 'vswin-bench-chromium-'));
  const launched = await launchWorkbench({ home, log: () => undefined });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1400, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const base = `http://127.0.0.1:${launched.service.port}`;
    const traces = process.env.BENCH_TRACES === 'svg' ? '&traces=svg' : '';
    await page.goto(`${base}/bench.html?token=${launched.service.token}${traces}`);
    const runs = Number(process.env.BENCH_RUNS ?? 20);
    const points = 100_000;
    const rate = 50;
    const seconds = Number(process.env.BENCH_SECONDS ?? 10);
    const result = await page.evaluate(
      (options) => (window as unknown as { benchUi: (o: typeof options) => Promise<BenchResult> }).benchUi(options),
      { runs, points, rate, seconds },
    );
    process.stdout.write(
      `Chart stream: ${runs} runs x ${points.toLocaleString('en')} points, +${rate} points/s for ${seconds} s (${result.traceType} traces)\n`,
    );
    const frames = result.frameTimes;
    process.stdout.write(
      `  initial draw of ${(runs * points).toLocaleString('en')} points: ${(result.setupMs / 1000).toFixed(2)} s\n`,
    );
    process.stdout.write(
      `  work per update (Plotly append/redraw): median ${quantile(result.updateMs, 0.5).toFixed(1)} ms, p95 ${quantile(result.updateMs, 0.95).toFixed(1)} ms (target: median < 16 ms)\n`,
    );
    process.stdout.write(
      `  frame interval (requestAnimationFrame, 16.7 ms floor at 60 Hz): median ${quantile(frames, 0.5).toFixed(1)} ms, p95 ${quantile(frames, 0.95).toFixed(1)} ms, max ${Math.max(...frames).toFixed(1)} ms over ${frames.length} frames\n`,
    );
    mkdirSync(join(process.cwd(), 'test-output'), { recursive: true });
    await page.screenshot({ path: join(process.cwd(), 'test-output', 'bench-ui.png') });
    process.stdout.write(
      `  updates: ${result.flushes} (${result.redraws} decimated redraws, the rest extendTraces) for ${result.pointsDrawn.toLocaleString('en')} live-run points; the other ${runs - 1} runs sit in a background layer drawn once\n`,
    );

    // 2. A real run: the demo model trained through the service, drawn on the Training page.
    await page.goto(`${base}/?token=${launched.service.token}`);
    await page.getByRole('status').filter({ hasText: 'connected' }).waitFor();
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('button', { name: 'Training', exact: true }).click();
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="train-status"]')?.textContent === 'completed',
      undefined,
      { timeout: 300_000 },
    );
    const latencies = await page.evaluate(
      () => (window as unknown as { __vswinCharts: Record<string, { latencies: number[] }> }).__vswinCharts.loss.latencies,
    );
    process.stdout.write(
      `Training event -> point on screen (demo run, ${latencies.length} events): median ${quantile(latencies, 0.5).toFixed(0)} ms, p95 ${quantile(latencies, 0.95).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms\n`,
    );
  } finally {
    await context.close();
    await launched.close();
    rmSync(home, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench:ui: ${error.message}\n`);
  process.exitCode = 1;
});

// The UI benchmark's page (bench/ui.ts drives it): 20 runs x 100,000 points overlaid, then points
// streaming at a set rate through the same LiveChart the training page uses; frame times measured.
import { LiveChart, lineTraceType } from './live-chart.ts';

declare global {
  interface Window {
    benchUi?: (options: { runs: number; points: number; rate: number; seconds: number }) => Promise<{
      frameTimes: number[];
      setupMs: number;
      pointsDrawn: number;
      flushes: number;
      redraws: number;
      traceType: string;
      updateMs: number[];
    }>;
  }
}

window.benchUi = async ({ runs, points, rate, seconds }) => {
  const element = document.getElementById('chart') as HTMLElement;
  const started = performance.now();
  const curve = (r: number, i: number) => 2 * Math.exp(-i / (points / 4)) + 0.05 * Math.sin(i / 50 + r) + r * 0.01;
  // The live run streams; the other runs are finished ones overlaid for comparison, as on the Training page.
  const chart = new LiveChart(
    element,
    [{ name: 'live run', smooth: false }],
    { title: 'benchmark', xTitle: 'iteration', yTitle: 'loss' },
    0,
  );
  chart.setBackground(
    Array.from({ length: runs - 1 }, (_, r) => {
      const x = Array.from({ length: points }, (_, i) => i);
      return { name: `run ${r + 2}`, x, y: x.map((i) => curve(r + 1, i)) };
    }),
  );
  for (let i = 0; i < points; i++) chart.push(0, i, curve(0, i));
  // Let the initial bulk flush land before timing the stream.
  await new Promise((resolve) => setTimeout(resolve, 50));
  while (chart.stats.points < points) await new Promise((resolve) => setTimeout(resolve, 20));
  const setupMs = performance.now() - started;
  const frameTimes: number[] = [];
  let last = performance.now();
  let running = true;
  const tick = (now: number) => {
    frameTimes.push(now - last);
    last = now;
    if (running) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  const updatesBefore = chart.stats.updateMs.length;
  let next = points;
  const interval = setInterval(() => {
    chart.push(0, next, 0.05 + Math.random() * 0.01, Date.now());
    next += 1;
  }, 1000 / rate);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  clearInterval(interval);
  running = false;
  return {
    frameTimes: frameTimes.slice(1),
    setupMs,
    pointsDrawn: chart.stats.points,
    flushes: chart.stats.flushes,
    redraws: chart.stats.redraws,
    traceType: lineTraceType(),
    updateMs: chart.stats.updateMs.slice(updatesBefore),
  };
};

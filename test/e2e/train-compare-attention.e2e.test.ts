// A short training run draws curve points live; two of its checkpoints are compared; the attention
// page shows a heatmap after a click on a patch; an uploaded video gets its top-5. One service and
// one browser for all steps.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openPage, screenshot, servedBrowser } from './harness.ts';

const session = servedBrowser();

it('trains the demo config and draws loss points while the run is going', async () => {
  const { page } = session.browser;
  await openPage(page, 'Config');
  // Two epochs keep the test short; the form edits the JSON the run uses.
  await page.getByLabel('Epochs').fill('2');
  await expect(page.getByRole('table', { name: 'Changes against the preset' }).innerText()).resolves.toContain('epochs');
  await page.getByText('Valid: every named file exists.').waitFor();
  await page.getByRole('button', { name: 'Use this config for training' }).click();
  await expect(page.getByRole('heading', { level: 1 }).innerText()).resolves.toBe('Training');
  await page.getByLabel('Run name').fill('e2e-run');
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  const status = page.getByTestId('train-status');
  const chart = page.getByTestId('loss-chart');
  // Points must appear before the run ends: that is what "live" means.
  await page.waitForFunction(
    () => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points') ?? 0) > 0,
    undefined,
    { timeout: 60_000 },
  );
  const statusWhileDrawing = await status.innerText();
  expect(['running', 'completed']).toContain(statusWhileDrawing);
  await page.waitForFunction(
    () => document.querySelector('[data-testid="train-status"]')?.textContent === 'completed',
    undefined,
    { timeout: 120_000 },
  );
  const drawn = await page.evaluate(
    () => (window as unknown as { __vswinCharts?: Record<string, { points: number; flushes: number }> }).__vswinCharts?.loss,
  );
  // The demo recipe (core/app/demo.ts, the same as vswin demo): 320 training videos in batches of 8, so
  // 2 epochs x 40 iterations of train loss (raw + smoothed); it validates every 5 epochs and after the last: 1 val loss.
  expect(drawn?.points).toBe(2 * 80 + 1);
  expect(drawn?.flushes).toBeGreaterThan(1);
  const traces = await chart.evaluate((element) =>
    (element as unknown as { data: { x: number[] }[] }).data.map((trace) => trace.x.length),
  );
  expect(traces).toEqual([80, 80, 1]);
  await expect(page.getByLabel('Training log').innerText()).resolves.toMatch(
    /run completed after [\d.]+ s; val top-1 \d+\.\d% at the last epoch/,
  );
  await expect(page.getByTestId('val-top1').innerText()).resolves.toMatch(/^\d+\.\d%$/);
  await screenshot(page, 'training-live-curves');
  expect(session.browser.errors).toEqual([]);
});

it('compares the two epoch checkpoints of the run', async () => {
  const { page } = session.browser;
  await openPage(page, 'Runs & checkpoints');
  const runs = page.getByRole('table', { name: 'Runs' });
  await expect(runs.innerText()).resolves.toContain('e2e-run');
  await page.getByLabel('Select run e2e-run').check();
  await page.getByRole('img', { name: 'train loss per iteration of the selected runs' }).waitFor();
  const boxes = page.getByRole('group', { name: /Checkpoints/ }).getByRole('checkbox');
  await expect(boxes.count()).resolves.toBe(2);
  await boxes.nth(0).check();
  await boxes.nth(1).check();
  await page.getByRole('button', { name: 'Compare', exact: true }).click();
  const metrics = page.getByRole('table', { name: 'Metrics side by side' });
  await metrics.waitFor({ timeout: 60_000 });
  const rows = await metrics.locator('tbody tr').allInnerTexts();
  expect(rows).toHaveLength(2);
  for (const row of rows) expect(row).toMatch(/1 x 1\t\d+\.\d%\t\d+\.\d%\t\d+\.\d%/);
  // A mouse click on the top-left cell of the first matrix lists the clips of (true 0, predicted 0).
  const cells = page.getByTestId('confusion-0').locator('.nsewdrag').first();
  await cells.waitFor();
  await cells.scrollIntoViewIfNeeded();
  const box = await cells.boundingBox();
  if (!box) throw new Error('the confusion matrix has no plot area');
  // Plotly reports a click for the point under the hover, so the pointer moves there first.
  await page.mouse.move(box.x + box.width / 8 - 5, box.y + box.height / 8 - 5);
  await page.mouse.move(box.x + box.width / 8, box.y + box.height / 8, { steps: 3 });
  await page.mouse.click(box.x + box.width / 8, box.y + box.height / 8);
  await page.getByRole('region', { name: 'Clips of the selected cell' }).waitFor();
  await expect(
    page.getByRole('region', { name: 'Clips of the selected cell' }).getByRole('heading').innerText(),
  ).resolves.toMatch(/true right, predicted right by e2e-run epoch 1/);
  // Pick the cell (true class 0, predicted as checkpoint 1 says for a class-0 clip) with the keyboard-usable selects.
  await page.getByRole('combobox', { name: 'Checkpoint of the cell', exact: true }).selectOption({ index: 0 });
  await page.getByRole('combobox', { name: 'True class', exact: true }).selectOption({ index: 0 });
  const clips = page.getByRole('region', { name: 'Clips of the selected cell' });
  await clips.waitFor();
  await expect(clips.getByRole('heading').innerText()).resolves.toMatch(/clip\(s\): true/);
  await page.getByRole('img', { name: /Relative L2 weight change per block/ }).waitFor();
  await screenshot(page, 'checkpoint-comparison');
  expect(session.browser.errors).toEqual([]);
});

it('shows the window grid and a heatmap after a click on a patch', async () => {
  const { page } = session.browser;
  await openPage(page, 'Attention windows');
  await page.getByRole('combobox', { name: 'Block', exact: true }).selectOption('1');
  await page.getByRole('button', { name: 'Show windows' }).click();
  const strip = page.getByRole('group', { name: 'Sampled frames with the window grid' });
  await strip.waitFor({ timeout: 60_000 });
  await expect(
    page.getByRole('heading', { name: /Stage 1, block 2: shifted windows of 2x4x4 tokens/ }).isVisible(),
  ).resolves.toBe(true);
  const frames = strip.getByRole('button');
  await expect(frames.count()).resolves.toBe(8);
  // The patch of token (1, 2, 4) of the 8x8 grid, wherever the frame is drawn and however large.
  const box = await frames.nth(2).boundingBox();
  if (!box) throw new Error('frame 3 is not on screen');
  await frames.nth(2).click({ position: { x: (4.5 / 8) * box.width, y: (2.5 / 8) * box.height } });
  // The page fetches the clicked query's window from the service (attention.window), then paints it.
  const summary = page.getByTestId('heatmap-summary');
  await summary.waitFor();
  await expect(summary.innerText()).resolves.toMatch(/over 32 tokens of its window \(window \d+ of \d+\)/);
  await expect(page.getByTestId('query-token').innerText()).resolves.toContain('(1, 2, 4)');
  const painted = await frames
    .nth(2)
    .locator('canvas')
    .evaluate((canvas) => {
      const context = (canvas as HTMLCanvasElement).getContext('2d') as CanvasRenderingContext2D;
      const data = context.getImageData(0, 0, (canvas as HTMLCanvasElement).width, (canvas as HTMLCanvasElement).height).data;
      // Heat colours are never grey; the window lines are white or black.
      let coloured = 0;
      for (let i = 0; i < data.length; i += 4)
        if (data[i + 3] > 0 && (data[i] !== data[i + 1] || data[i + 1] !== data[i + 2])) coloured += 1;
      return coloured;
    });
  // More than the query's outline: the heat covers the frame's tokens of the window (16 of them here).
  expect(painted).toBeGreaterThan(4 * (box.width / 8) ** 2);
  await expect(page.getByRole('table', { name: 'Top-5 prediction' }).locator('tr').count()).resolves.toBe(4);
  await screenshot(page, 'attention-heatmap');
  // The same without a mouse: Enter picks the centre patch of a frame, arrows move it.
  await frames.nth(6).focus();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('query-token').innerText()).resolves.toContain('(3, 4, 4)');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowUp');
  await expect(page.getByTestId('query-token').innerText()).resolves.toContain('(3, 3, 3)');
  // The heatmap follows the keyboard too (its window is fetched when it is not the one held).
  await page.waitForFunction(() =>
    document.querySelector('[data-testid="heatmap-summary"]')?.textContent?.includes('token (3, 3, 3)'),
  );
  expect(session.browser.errors).toEqual([]);
});

it('predicts the top-5 of an uploaded video', async () => {
  const { page } = session.browser;
  await openPage(page, 'Try a video');
  const video = join(session.served.home, 'datasets', 'demo', 'videos', 'left', 'left-000.mp4');
  await page.getByLabel('choose a file to upload').setInputFiles(video);
  const uploaded = page.getByRole('textbox', { name: "Video on the service's disk" });
  await page.waitForFunction(() =>
    /uploads\/\d+-left-000\.mp4$/.test((document.getElementById('try-video') as HTMLInputElement | null)?.value ?? ''),
  );
  expect(await uploaded.inputValue()).toContain(join(session.served.home, 'uploads'));
  await page.getByRole('button', { name: 'Predict' }).click();
  const top5 = page.getByRole('table', { name: 'Top-5 prediction' });
  await top5.waitFor({ timeout: 60_000 });
  const rows = await top5.locator('tr').allInnerTexts();
  expect(rows).toHaveLength(4);
  const scores = rows.map((row) => Number(/([\d.]+)%/.exec(row)?.[1]));
  expect(scores.reduce((a, b) => a + b, 0)).toBeGreaterThan(99);
  expect(scores).toEqual([...scores].sort((a, b) => b - a));
  await screenshot(page, 'try-a-video');
  expect(session.browser.errors).toEqual([]);
});

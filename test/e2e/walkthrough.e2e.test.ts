// The walkthrough's defects (issue 18), each checked the way a person meets it in the UI: Settings
// names the kernel tier as `vswin doctor` does; smoothing 0 keeps the real val-loss curve; the
// attention explorer lists the model's own blocks, draws large frames with a colour bar and steps
// through windows and heads; Try a video plays the video over a seekable timeline with a top-5 per
// segment; Runs overlays any metric and lists the parameters that differ. One service and one browser.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { resolveTools } from '../../core/data/decode.ts';
import { openPage, ROOT, screenshot, servedBrowser } from './harness.ts';

const session = servedBrowser();

type Traces = { name: string; x: number[]; y: number[] }[];
const traces = (selector: string) =>
  session.browser.page.locator(selector).evaluate((element) =>
    (element as unknown as { data: { name: string; x: ArrayLike<number>; y: ArrayLike<number> }[] }).data.map((t) => ({
      name: t.name,
      x: Array.from(t.x),
      y: Array.from(t.y),
    })),
  ) as Promise<Traces>;

/** Trains the demo config for `epochs` epochs from the UI, as a person would, and waits for the end. */
async function trainRun(name: string, epochs: number): Promise<void> {
  const { page } = session.browser;
  await openPage(page, 'Config');
  await page.getByLabel('Epochs').fill(String(epochs));
  await page.getByText('Valid: every named file exists.').waitFor({ timeout: 120_000 });
  await page.getByRole('button', { name: 'Use this config for training' }).click();
  await page.getByLabel('Run name').fill(name);
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="train-status"]')?.textContent === 'completed',
    undefined,
    {
      timeout: 150_000,
    },
  );
}

it('the first screen says what to do: one click trains the demo model with live curves (defect 3)', async () => {
  const { page } = session.browser;
  await expect(page.getByRole('heading', { level: 1 }).innerText()).resolves.toBe('Datasets');
  const hint = page.getByRole('region', { name: 'New here? Start with the demo' });
  await expect(hint.innerText()).resolves.toMatch(/4 classes of moving shapes: down, left, right, up|4 classes of moving shapes/);
  await screenshot(page, 'walkthrough-first-screen');
  await hint.getByRole('button', { name: 'Train the demo model' }).click();
  await expect(page.getByRole('heading', { level: 1 }).innerText()).resolves.toBe('Training');
  await page.waitForFunction(
    () => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points') ?? 0) > 0,
    undefined,
    { timeout: 90_000 },
  );
  await expect(page.getByTestId('train-config').innerText()).resolves.toContain('Config: demo-micro');
  // The rest of this file trains its own short runs: this one is stopped here.
  await page.getByRole('button', { name: 'Stop', exact: true }).click();
  await page.waitForFunction(
    () => ['stopped', 'completed'].includes(document.querySelector('[data-testid="train-status"]')?.textContent ?? ''),
    undefined,
    {
      timeout: 60_000,
    },
  );
  expect(session.browser.errors).toEqual([]);
});

it('Settings names the kernel tier, instruction set and threads as vswin doctor does', async () => {
  const { page } = session.browser;
  const doctor = execFileSync(process.execPath, [join(ROOT, 'bin', 'vswin.js'), 'doctor'], { cwd: ROOT, encoding: 'utf8' });
  // "kernels:  native tier, avx512 code on 2 threads (...)" or "stock TensorFlow.js kernels (...)"
  const line = /kernels:\s+(.*)/.exec(doctor)?.[1] ?? '';
  expect(line).not.toBe('');
  await openPage(page, 'Settings');
  const tier = page.getByTestId('kernel-tier');
  await tier.waitFor();
  const shown = await tier.innerText();
  expect(line.startsWith(shown)).toBe(true);
  const table = await page.getByRole('table', { name: 'Engine settings' }).innerText();
  expect(table).toMatch(/Instruction set\t\S+/);
  expect(table).toMatch(/Threads\t\d+/);
  await screenshot(page, 'walkthrough-settings');
  expect(session.browser.errors).toEqual([]);
});

it('smoothing 0 leaves the real val-loss curve in place (defect 4)', async () => {
  const { page } = session.browser;
  await trainRun('walk-a', 2);
  const chart = '[data-testid="loss-chart"]';
  const before = await traces(chart);
  expect(before.map((t) => t.name)).toEqual(['train loss', 'train loss (smoothed)', 'val loss']);
  const valLoss = before[2];
  // The demo recipe validates every 5 epochs and at the last one: a 2-epoch run has one val point.
  expect(valLoss.y).toHaveLength(1);
  await page.getByLabel('Smoothing').fill('0');
  await page.waitForFunction(
    (selector) => (document.querySelector(selector) as unknown as { data: unknown[] }).data.length === 2,
    chart,
  );
  const after = await traces(chart);
  expect(after.map((t) => t.name)).toEqual(['train loss', 'val loss']);
  // The same points as before, not the smoothed train loss under the val-loss name.
  expect(after[1]).toEqual(valLoss);
  expect(after[0]).toEqual(before[0]);
  // And back: the smoothed companion returns over the raw curve, val loss unchanged.
  await page.getByLabel('Smoothing').fill('0.5');
  await page.waitForFunction(
    (selector) => (document.querySelector(selector) as unknown as { data: unknown[] }).data.length === 3,
    chart,
  );
  expect((await traces(chart))[2]).toEqual(valLoss);
  await page.getByLabel('Smoothing').fill('0');
  await page.waitForFunction(
    (selector) => (document.querySelector(selector) as unknown as { data: unknown[] }).data.length === 2,
    chart,
  );
  await screenshot(page, 'walkthrough-smoothing-0');
  expect(session.browser.errors).toEqual([]);
});

it('the attention explorer lists the model’s blocks, shows large frames, a colour bar, and steps through windows and heads (defect 8)', async () => {
  const { page } = session.browser;
  await openPage(page, 'Attention windows');
  // The demo's model has depths 2-2 (core/app/demo.ts): two stages of two blocks, numbered from 1.
  const blocks = await page.getByRole('combobox', { name: 'Block', exact: true }).locator('option').allInnerTexts();
  expect(blocks).toEqual(['block 1 (regular windows)', 'block 2 (shifted windows)']);
  const stages = await page.getByRole('combobox', { name: 'Stage', exact: true }).locator('option').allInnerTexts();
  expect(stages).toEqual(['stage 1 (2 blocks)', 'stage 2 (2 blocks)']);
  await page.getByRole('combobox', { name: 'Block', exact: true }).selectOption({ label: 'block 2 (shifted windows)' });
  await page.getByRole('button', { name: 'Show windows' }).click();
  const strip = page.getByRole('group', { name: 'Sampled frames with the window grid' });
  await strip.waitFor({ timeout: 60_000 });
  await page.getByRole('heading', { name: /Stage 1, block 2: shifted windows/ }).waitFor();
  const frames = strip.getByRole('button');
  const box = await frames.nth(2).boundingBox();
  if (!box) throw new Error('frame 3 is not on screen');
  // A 32-pixel clip is drawn about 320 pixels wide (it was 128).
  expect(box.width).toBeGreaterThanOrEqual(300);
  // Token (1, 2, 4) of an 8x8 grid: the centre of its patch.
  await frames.nth(2).click({ position: { x: (4.5 / 8) * box.width, y: (2.5 / 8) * box.height } });
  await expect(page.getByTestId('query-token').innerText()).resolves.toContain('(1, 2, 4)');
  const summary = page.getByTestId('heatmap-summary');
  await summary.waitFor();
  await expect(summary.innerText()).resolves.toMatch(/over 32 tokens of its window \(window \d+ of \d+\), average of 2 heads/);
  const bar = page.getByRole('figure', { name: /Colour scale: attention weight from 0% to \d+\.\d%/ });
  await expect(bar.innerText()).resolves.toMatch(/0%\s+uniform over the window: 3\.1%\s+\d+\.\d%/);
  const cells = await frames.nth(2).locator('canvas').getAttribute('data-heat-cells');
  expect(Number(cells)).toBeGreaterThan(0);
  // Stepping: the next window moves the query to that window's centre.
  const position = page.getByTestId('window-position');
  const first = await position.innerText();
  await page.getByRole('button', { name: 'Next window ▶' }).click();
  await page.waitForFunction((old) => document.querySelector('[data-testid="window-position"]')?.textContent !== old, first);
  const windowNumber = (text: string) => Number(/window (\d+) of/.exec(text)?.[1]);
  expect(windowNumber(await position.innerText())).toBe(windowNumber(first) + 1);
  await page.waitForFunction(() =>
    document
      .querySelector('[data-testid="heatmap-summary"]')
      ?.textContent?.includes(
        `(window ${/window (\d+) of/.exec(document.querySelector('[data-testid="window-position"]')?.textContent ?? '')?.[1]} of`,
      ),
  );
  // Heads: stage 1 of the demo's model has two; stepping goes average -> head 1 -> head 2 -> average.
  await page.getByRole('button', { name: 'Next head' }).click();
  await expect(summary.innerText()).resolves.toContain('head 1 of 2');
  await screenshot(page, 'walkthrough-attention-micro');
  expect(session.browser.errors).toEqual([]);
});

it('Try a video plays the video over a seekable timeline with each segment’s top-5 (defect 9)', async () => {
  const { page } = session.browser;
  // Four demo clips one after the other: long enough for a timeline of sliding clips.
  const source = join(session.served.home, 'datasets', 'demo', 'videos', 'left', 'left-000.mp4');
  const folder = join(session.served.home, 'datasets', 'long');
  mkdirSync(folder, { recursive: true });
  const long = join(folder, 'left-x4.mp4');
  execFileSync(resolveTools().ffmpeg.path, ['-v', 'error', '-y', '-stream_loop', '3', '-i', source, '-c', 'copy', long]);
  await openPage(page, 'Try a video');
  await page.getByRole('textbox', { name: "Video on the service's disk" }).fill(long);
  await page.getByRole('button', { name: 'Predict' }).click();
  const track = page.getByRole('slider', { name: /Position in the video/ });
  await track.waitFor({ timeout: 90_000 });
  await page.waitForFunction(
    () => (document.querySelector('video[aria-label="Video left-x4.mp4"]') as HTMLVideoElement)?.readyState >= 1,
  );
  const duration = await page.evaluate(
    () => (document.querySelector('video[aria-label="Video left-x4.mp4"]') as HTMLVideoElement).duration,
  );
  expect(duration).toBeGreaterThan(0);
  // A click at 3/4 of the timeline seeks the video there.
  await track.scrollIntoViewIfNeeded();
  const box = await track.boundingBox();
  if (!box) throw new Error('the timeline is not on screen');
  await page.mouse.click(box.x + box.width * 0.75, box.y + box.height / 2);
  await page.waitForFunction(
    (expected) =>
      Math.abs((document.querySelector('video[aria-label="Video left-x4.mp4"]') as HTMLVideoElement).currentTime - expected) <
      0.15,
    duration * 0.75,
  );
  const now = Number(await track.getAttribute('aria-valuenow'));
  expect(Math.abs(now - duration * 0.75)).toBeLessThan(0.15);
  // Hovering a segment shows its own top-5 (the micro model has four classes).
  const segments = track.locator('[data-testid^="segment-"]');
  expect(await segments.count()).toBeGreaterThanOrEqual(2);
  await segments.first().hover();
  const top5 = page.getByRole('table', { name: 'Top-5 of the segment' });
  await expect(top5.locator('caption').innerText()).resolves.toMatch(/^Clip at 0\.0–\d+\.\d s$/);
  const rows = await top5.locator('tbody tr').allInnerTexts();
  expect(rows).toHaveLength(4);
  const scores = rows.map((row) => Number(/([\d.]+)%/.exec(row)?.[1]));
  expect(scores.reduce((a, b) => a + b, 0)).toBeGreaterThan(99);
  await screenshot(page, 'walkthrough-try-a-video');
  expect(session.browser.errors).toEqual([]);
});

it('Runs overlays any metric and lists the parameters that differ, without epochs next to Epochs (defect 10)', async () => {
  const { page } = session.browser;
  // A second run that differs in its epochs.
  await trainRun('walk-b', 1);
  await openPage(page, 'Runs & checkpoints');
  const runs = page.getByRole('table', { name: 'Runs' });
  const header = await runs.locator('thead').innerText();
  expect(header).toContain('Epochs');
  expect(header.split('\t').map((h) => h.trim())).not.toContain('epochs');
  await page.getByLabel('Select run walk-a').check();
  await page.getByLabel('Select run walk-b').check();
  const diff = page.getByRole('table', { name: 'Parameters that differ' });
  await diff.waitFor();
  const rows = await diff.locator('tbody tr').allInnerTexts();
  expect(rows).toContainEqual(expect.stringMatching(/^epochs\t2\t1$|^epochs\t1\t2$/));
  // Any recorded metric: the val loss per epoch, one trace per run with that run's epochs.
  await page.locator('#overlay-right-metric').selectOption('epoch:val:loss');
  const chart = page.getByRole('img', { name: 'val loss per epoch of the selected runs' });
  await chart.waitFor();
  const overlay = await chart.evaluate((element) =>
    (element as unknown as { data: { name: string; x: number[] }[] }).data.map((t) => [t.name, Array.from(t.x)]),
  );
  expect(overlay).toEqual(
    expect.arrayContaining([
      // Validation every 5 epochs and at the last one (the demo recipe).
      ['walk-a', [2]],
      ['walk-b', [1]],
    ]),
  );
  await page.locator('#overlay-right-axis').selectOption('relative');
  await page.waitForFunction(() => {
    const element = document.querySelector('[aria-label="val loss per epoch of the selected runs"]') as unknown as {
      data: { x: number[] }[];
    };
    return element.data.every((t) => Array.from(t.x).at(-1) === 1);
  });
  await screenshot(page, 'walkthrough-runs-overlay');
  expect(session.browser.errors).toEqual([]);
});

it('the attention explorer on a Swin-T-sized input: 32 frames of 224x224, the Swin-T model (defect 8)', async () => {
  const { page } = session.browser;
  // A Swin-T checkpoint (seeded initial weights: the geometry and the drawing are what is checked) with the
  // Kinetics-400 test pipeline, and a 3-second 320x240 video: 32 frames every 2nd, centre-cropped to 224.
  const { createVideoSwin } = await import('../../core/model/video-swin.ts');
  const { parseModelConfig } = await import('../../core/model/config.ts');
  const { VARIANTS } = await import('../../core/model/variants.ts');
  const { saveCheckpoint } = await import('../../core/model/weights/checkpoint.ts');
  const folder = join(session.served.home, 'datasets', 'swin-t');
  mkdirSync(folder, { recursive: true });
  const checkpoint = join(folder, 'swin_t_init.safetensors');
  const config = parseModelConfig(VARIANTS.swin_t.config);
  const model = createVideoSwin(config, { seed: 0 });
  try {
    const classes = Array.from({ length: config.num_classes }, (_, i) => `class ${i + 1}`);
    saveCheckpoint(checkpoint, model.stateDict(), {
      config,
      classes,
      pipeline: { preset: 'k400', clipLen: 32, frameInterval: 2, cropSize: 224, shortSide: 256 },
    });
  } finally {
    model.dispose();
  }
  const video = join(folder, 'testsrc-320x240.mp4');
  execFileSync(resolveTools().ffmpeg.path, [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=320x240:rate=25',
    '-t',
    '3',
    '-pix_fmt',
    'yuv420p',
    video,
  ]);
  await openPage(page, 'Attention windows');
  await page.getByLabel('Or any checkpoint file (absolute path)').fill(checkpoint);
  await page.getByLabel('Or any video file (absolute path)').fill(video);
  await page.getByRole('combobox', { name: 'Stage', exact: true }).selectOption('0');
  await page.getByRole('combobox', { name: 'Block', exact: true }).selectOption('1');
  await page.getByRole('button', { name: 'Show windows' }).click();
  const heading = page.getByRole('heading', { name: /Stage 1, block 2: shifted windows of 8x7x7 tokens/ });
  await heading.waitFor({ timeout: 300_000 });
  await expect(heading.innerText()).resolves.toContain('grid 16x56x56');
  // Now the model is known: Swin-T's depths 2-2-6-2 in the lists.
  const stages = await page.getByRole('combobox', { name: 'Stage', exact: true }).locator('option').allInnerTexts();
  expect(stages).toEqual(['stage 1 (2 blocks)', 'stage 2 (2 blocks)', 'stage 3 (6 blocks)', 'stage 4 (2 blocks)']);
  const strip = page.getByRole('group', { name: 'Sampled frames with the window grid' });
  const frames = strip.getByRole('button');
  await expect(frames.count()).resolves.toBe(32);
  const box = await frames.nth(4).boundingBox();
  if (!box) throw new Error('frame 5 is not on screen');
  // 32 frames: a strip of 200-pixel frames, and the query's frame enlarged above it.
  expect(Math.round(box.width)).toBe(200);
  // The centre patch of frame 5, then the heatmap over its window of 8x7x7 = 392 tokens.
  await frames.nth(4).focus();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('query-token').innerText()).resolves.toContain('(2, 28, 28)');
  const summary = page.getByTestId('heatmap-summary');
  await summary.waitFor({ timeout: 120_000 });
  await expect(summary.innerText()).resolves.toMatch(/over 392 tokens of its window \(window \d+ of 128\), average of 3 heads/);
  await page.getByRole('button', { name: 'Next head' }).click();
  await expect(summary.innerText()).resolves.toContain('head 1 of 3');
  await frames.nth(4).scrollIntoViewIfNeeded();
  const path = await screenshot(page, 'attention-swin-t-224');
  expect(path).toContain('attention-swin-t-224.png');
  expect(session.browser.errors).toEqual([]);
});

it('num_classes against the label map is checked, and config edits survive a reload (defect 7)', async () => {
  const { page } = session.browser;
  await openPage(page, 'Config');
  await page.getByLabel('Classes').fill('7');
  // The demo's label map names 4 classes: the validator says so at the field.
  await page
    .getByText(/model\.num_classes: 7, but the label map data\.classes \(.*classes\.txt\) names 4 classes/)
    .first()
    .waitFor();
  await expect(page.getByRole('button', { name: 'Use this config for training' }).isDisabled()).resolves.toBe(true);
  await page.getByLabel('Classes').fill('4');
  await page.getByLabel('Epochs').fill('5');
  await page.getByText('Valid: every named file exists.').waitFor({ timeout: 120_000 });
  await screenshot(page, 'walkthrough-config-edited');
  // A reload (as after a service restart on the same port): the edited config is still the one in use.
  await page.reload();
  await page
    .getByRole('status')
    .filter({ hasText: /^connected$/ })
    .waitFor();
  await openPage(page, 'Config');
  await expect(page.getByLabel('Epochs').inputValue()).resolves.toBe('5');
  await openPage(page, 'Training');
  await expect(page.getByTestId('train-config').innerText()).resolves.toMatch(
    /Config: \S+, edited \(edit it on the Config page\)\./,
  );
  expect(session.browser.errors).toEqual([]);
});

it('the annotation check lists a repeated problem once, old results leave with their inputs, a long preview shows its time and zooms (defects 11-13)', async () => {
  const { page } = session.browser;
  const demo = join(session.served.home, 'datasets', 'demo');
  // Ten lines whose label is outside the demo's 4 classes, plus one missing video.
  const bad = join(demo, 'bad-labels.txt');
  const lines = Array.from({ length: 10 }, (_, i) => `left/left-00${i % 3}.mp4 9`);
  writeFileSync(bad, `${lines.join('\n')}\nleft/missing.mp4 0\n`);
  await openPage(page, 'Datasets');
  await page.locator('#check-file').fill(bad);
  await page.locator('#check-root').fill(join(demo, 'videos'));
  await page.getByRole('button', { name: 'Validate' }).click();
  const problems = page.getByRole('list', { name: 'Problems found' });
  await problems.waitFor();
  const items = await problems.locator('li').allInnerTexts();
  // The label problem once with its ten lines, not ten times.
  expect(items.filter((item) => /^lines 1, 2, 3, 4, 5, 6, 7, 8 and 2 more: /.test(item))).toHaveLength(1);
  // No message twice: each one is listed once with the lines it was found on.
  const messages = items.map((item) => item.replace(/^lines? [\d, ]+(and \d+ more)?: /, ''));
  expect(new Set(messages).size).toBe(messages.length);
  expect(items.some((item) => item.startsWith('line 11: '))).toBe(true);
  await screenshot(page, 'walkthrough-annotation-problems');
  // A new file: the old result goes at once.
  await page.locator('#check-file').fill(join(demo, 'train.txt'));
  await expect(problems.count()).resolves.toBe(0);
  await expect(page.getByRole('status', { name: 'Validation result' }).count()).resolves.toBe(0);
  // The Kinetics-400 test pipeline (30 views): the wait shows what runs and for how long, the sheet zooms.
  await page.locator('#preview-preset').selectOption('k400');
  await page.locator('#preview-mode').selectOption('test');
  await page.getByRole('button', { name: 'Preview frames' }).click();
  await page.getByRole('status', { name: 'Decoding and transforming sample 0 (test pipeline): running' }).waitFor();
  const sheet = page.locator('img.sheet');
  await sheet.waitFor({ timeout: 120_000 });
  const shown = await sheet.evaluate((image) => [
    (image as HTMLImageElement).clientWidth,
    (image as HTMLImageElement).naturalWidth,
  ]);
  expect(shown[0]).toBeLessThan(shown[1]);
  await sheet.click();
  await expect(sheet.getAttribute('class')).resolves.toBe('sheet zoomed');
  const zoomed = await sheet.evaluate((image) => (image as HTMLImageElement).clientWidth);
  expect(zoomed).toBe(shown[1]);
  expect(session.browser.errors).toEqual([]);
});

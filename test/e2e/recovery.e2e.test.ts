// Recovery (issue 18, defect 5): the service is killed with SIGKILL in the middle of a run and started
// again on the same home; the open tab reconnects by itself (same port and token), shows the run as
// interrupted, and Resume on the Runs page finishes it with every iteration's point, none twice.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openBrowser, openPage, screenshot, serve, type Browser, type Served } from './harness.ts';

const state: { first?: Served; second?: Served; browser?: Browser } = {};
afterAll(async () => {
  await state.browser?.close();
  await state.second?.stop();
  if (state.first) {
    if (state.first.process.exitCode === null && state.first.process.signalCode === null) state.first.process.kill('SIGKILL');
    rmSync(state.first.home, { recursive: true, force: true });
  }
});

it('kill -9 mid-run, restart: the same tab reconnects and Resume completes the run with no point lost', async () => {
  state.first = await serve();
  const home = state.first.home;
  state.browser = await openBrowser(state.first.url);
  const { page } = state.browser;
  await openPage(page, 'Config');
  await page.getByLabel('Epochs').fill('3');
  await page.getByText('Valid: every named file exists.').waitFor({ timeout: 120_000 });
  await page.getByRole('button', { name: 'Use this config for training' }).click();
  await page.getByLabel('Run name').fill('crash-run');
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  const log = page.getByLabel('Training log');
  // The first epoch's checkpoint is written, then the service dies without any chance to save more.
  await page.waitForFunction(
    () => /checkpoint epoch 1 /.test(document.querySelector('[aria-label="Training log"]')?.textContent ?? ''),
    undefined,
    {
      timeout: 120_000,
    },
  );
  const exited = new Promise((resolve) => state.first?.process.once('exit', resolve));
  state.first.process.kill('SIGKILL');
  await exited;
  await page
    .getByRole('status')
    .filter({ hasText: /disconnected|connecting/ })
    .first()
    .waitFor();

  state.second = await serve([], home);
  // Same port and token: the tab's own reconnect loop gets in, no reload.
  expect(new URL(state.second.url).port).toBe(new URL(state.first.url).port);
  await page
    .getByRole('status')
    .filter({ hasText: /^connected$/ })
    .waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="train-status"]')?.textContent === 'interrupted');
  await openPage(page, 'Runs & checkpoints');
  const row = page.getByRole('table', { name: 'Runs' }).locator('tr', { hasText: 'crash-run' });
  await expect(row.innerText()).resolves.toContain('interrupted');
  await screenshot(page, 'recovery-interrupted-run');
  await page.getByRole('button', { name: 'Resume crash-run' }).click();
  // The service answers once the run is resumed; then the Training page opens on it.
  await page.getByRole('heading', { level: 1, name: 'Training' }).waitFor({ timeout: 60_000 });
  await page.waitForFunction(
    () => document.querySelector('[data-testid="train-status"]')?.textContent === 'completed',
    undefined,
    {
      timeout: 150_000,
    },
  );
  await expect(log.innerText()).resolves.toContain('resumed crash-run');
  // Every iteration of the 3 epochs once, in order, and the val loss of the last epoch (the demo recipe
  // validates every 5 epochs and at the last one): nothing lost, nothing twice.
  const trainVideos = readFileSync(join(home, 'datasets', 'demo', 'train.txt'), 'utf8')
    .trim()
    .split('\n').length;
  const perEpoch = Math.ceil(trainVideos / 8); // the demo recipe's batch size
  const traces = await page
    .getByTestId('loss-chart')
    .evaluate((element) =>
      (element as unknown as { data: { name: string; x: ArrayLike<number> }[] }).data.map((t) => [t.name, Array.from(t.x)]),
    );
  const iterations = Array.from({ length: 3 * perEpoch }, (_, i) => i + 1);
  expect(traces).toContainEqual(['train loss', iterations]);
  expect(traces).toContainEqual(['val loss', [3 * perEpoch]]);
  await openPage(page, 'Runs & checkpoints');
  await expect(row.innerText()).resolves.toMatch(/completed[\s\S]*3\/3/);
  await screenshot(page, 'recovery-resumed-run');
  expect(state.browser.errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|connection to the workbench/.test(e))).toEqual([]);
});

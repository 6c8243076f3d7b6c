// The datasets wizard writes annotation files for a generated folder; the shell is keyboard-usable
// and switches themes.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openPage, screenshot, servedBrowser } from './harness.ts';

const session = servedBrowser();

it('scans the demo folder, lists its classes and writes train/val/classes files', async () => {
  const { page } = session.browser;
  await expect(page.getByRole('heading', { level: 1, name: 'Datasets' }).isVisible()).resolves.toBe(true);
  const root = join(session.served.home, 'datasets', 'demo', 'videos');
  await page.getByRole('textbox', { name: 'Video folder', exact: true }).fill(root);
  await page.getByRole('button', { name: 'Scan', exact: true }).click();
  const table = page.getByRole('table', { name: 'Classes found' });
  await table.waitFor();
  const rows = await table.locator('tbody tr').allInnerTexts();
  expect(rows).toHaveLength(4);
  expect(rows.map((r) => r.split('\t')[2]).sort()).toEqual(['down', 'left', 'right', 'up']);
  await expect(page.getByText('Every file could be read.').isVisible()).resolves.toBe(true);

  await page.getByLabel('Dataset name').fill('e2e-set');
  await page.getByLabel('Validation fraction').fill('0.25');
  await page.getByRole('button', { name: 'Write annotation files' }).click();
  await page.getByRole('status', { name: 'Written files' }).waitFor();
  const out = join(session.served.home, 'datasets', 'e2e-set');
  for (const file of ['train.txt', 'val.txt', 'classes.txt', 'report.json']) expect(existsSync(join(out, file)), file).toBe(true);
  const train = readFileSync(join(out, 'train.txt'), 'utf8').trim().split('\n');
  const val = readFileSync(join(out, 'val.txt'), 'utf8').trim().split('\n');
  // The demo dataset (core/app/demo.ts): 4 classes x 100 videos; a quarter of each class for validation.
  expect(train.length + val.length).toBe(400);
  expect(val).toHaveLength(100);
  expect(train[0]).toMatch(/^\w+\/\w+-\d{3}\.mp4 \d$/);
  await screenshot(page, 'datasets-wizard');

  await page.getByRole('textbox', { name: 'Annotation file', exact: true }).fill(join(out, 'val.txt'));
  await page.getByRole('textbox', { name: 'Data root', exact: true }).fill(root);
  await page.getByRole('button', { name: 'Validate' }).click();
  await expect(page.getByRole('status', { name: 'Validation result' }).innerText()).resolves.toContain(
    '100 entries, 4 classes: no errors',
  );
  await page.getByRole('button', { name: 'Preview frames' }).click();
  await page.getByRole('img', { name: /Frames the train pipeline gives/ }).waitFor();
  expect(session.browser.errors).toEqual([]);
});

it('moves between pages with Alt+digit and focuses each page heading; dark theme applies', async () => {
  const { page } = session.browser;
  await page.keyboard.press('Alt+7');
  await expect(page.getByRole('heading', { level: 1 }).innerText()).resolves.toBe('Settings');
  await expect(page.evaluate(() => document.activeElement?.tagName)).resolves.toBe('H1');
  await expect(page.getByRole('table', { name: 'Engine settings' }).innerText()).resolves.toContain('wasm');
  await page.getByLabel('Dark', { exact: true }).check();
  await expect(page.evaluate(() => document.documentElement.dataset.theme)).resolves.toBe('dark');
  await page.keyboard.press('Alt+2');
  await expect(page.getByRole('heading', { level: 1 }).innerText()).resolves.toBe('Config');
  await page.getByRole('table', { name: 'Estimate' }).waitFor();
  await screenshot(page, 'config-dark');
  await openPage(page, 'Datasets');
  expect(session.browser.errors).toEqual([]);
});

it('gives every control on every page an accessible name and every page one h1', async () => {
  const { page } = session.browser;
  for (let key = 1; key <= 7; key++) {
    await page.keyboard.press(`Alt+${key}`);
    const report = await page.evaluate(() => {
      const unnamed = Array.from(document.querySelectorAll('input, select, textarea, button'))
        .filter((element) => {
          const control = element as HTMLInputElement;
          const named =
            (control.labels && control.labels.length > 0) ||
            control.getAttribute('aria-label') ||
            (element.tagName === 'BUTTON' && element.textContent?.trim());
          return !named;
        })
        .map((element) => element.outerHTML.slice(0, 80));
      return { unnamed, headings: document.querySelectorAll('h1').length, title: document.querySelector('h1')?.textContent };
    });
    expect(report.unnamed, `page ${report.title}`).toEqual([]);
    expect(report.headings, `page ${report.title}`).toBe(1);
  }
});

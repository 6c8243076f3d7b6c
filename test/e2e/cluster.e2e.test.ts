// Beyond one machine, in the real UI: a one-node Slurm + sshd on 127.0.0.1 (test/cluster/
// local-cluster.ts) with the stand-in engine, `vswin serve` and Debian's Chromium. The cluster is
// added and checked in the settings, the launch form shows the generated files and submits; the
// jobs table follows one job to COMPLETED while its curves draw, a second is cancelled, a third
// fails; a pulled checkpoint is compared beside a local one. Skipped, with the reason printed, only
// when the Slurm/sshd daemons cannot start here (as test/cluster/slurm-integration.test.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { demoDataset, microRunConfig } from '../../core/host/service/demo.ts';
import { recognizerKeys } from '../../core/model/keys.ts';
import { parseModelConfig } from '../../core/model/config.ts';
import { modelConfigOf, resolveRunConfig } from '../../core/train/run-config.ts';
import { clusterUnavailableReason, startLocalCluster, type LocalCluster } from '../cluster/local-cluster.ts';
import { openBrowser, openPage, screenshot, SCREENSHOTS, serve, type Browser, type Served } from './harness.ts';

const unavailable = clusterUnavailableReason();
if (unavailable) console.warn(`[cluster e2e] skipped: ${unavailable}`);

const engineDir = fileURLToPath(new URL('../cluster/stand-in/engine', import.meta.url));

describe.skipIf(unavailable !== null)('cluster pages against a real Slurm', () => {
  let cluster: LocalCluster;
  let served: Served;
  let browser: Browser;
  let work: string;
  let python: string;
  let dataRoot: string;
  const started = Date.now();

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'vswin-cluster-e2e-'));
    python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    // The service polls unfinished jobs every second here (5 s by default).
    process.env.VSWIN_CLUSTER_POLL_SECONDS = '1';
    [cluster, served] = await Promise.all([startLocalCluster(), serve()]);
    const demo = demoDataset(served.home);
    if (!demo) throw new Error(`vswin serve made no demo dataset in ${served.home}`);
    dataRoot = demo.root;
    // The stand-in writes checkpoints holding exactly the keys of the launched run's model (micro on demo).
    const keys = [...recognizerKeys(parseModelConfig(modelConfigOf(resolveRunConfig(microRunConfig(demo), served.home))))].map(
      ([key, spec]) => [key, spec.shape],
    );
    writeFileSync(join(work, 'keys.json'), JSON.stringify(keys));
    browser = await openBrowser(served.url);
  });

  afterAll(async () => {
    await browser?.close();
    await served?.stop();
    cluster?.stop();
    delete process.env.VSWIN_CLUSTER_POLL_SECONDS;
    if (work) rmSync(work, { recursive: true, force: true });
    console.info(`[cluster e2e] ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
  });

  const jobState = (page: Page, run: string) => page.getByTestId(`job-state-${run}`).first();
  const waitForState = (page: Page, run: string, pattern: RegExp, seconds: number) =>
    page.waitForFunction(
      ({ testId, source }) => new RegExp(source).test(document.querySelector(`[data-testid="${testId}"]`)?.textContent ?? ''),
      { testId: `job-state-${run}`, source: pattern.source },
      { timeout: seconds * 1000 },
    );

  /** Fills the launch form for one run, shows the generated files, and submits. */
  const launchRegion = (page: Page) => page.getByRole('region', { name: 'Launch a run on a cluster' });

  async function launch(page: Page, name: string, environment: string, gpus = 2): Promise<void> {
    const form = launchRegion(page);
    // The quick three-epoch config on the demo data (demo-micro itself is the 60-epoch demo recipe).
    await form.getByLabel('Run config').selectOption({ label: 'preset micro on demo' });
    await form.getByLabel('Cluster', { exact: true }).selectOption('local');
    await form.getByLabel('GPUs per node').fill(String(gpus));
    await form.getByLabel('Engine generation').selectOption('0.x');
    await form.getByLabel('Run name').fill(name);
    await form.getByLabel('Log interval (iterations)').fill('1');
    await form.getByLabel('Environment for this run (NAME=value per line)').fill(environment);
    await expect(form.getByRole('button', { name: 'Submit' }).isDisabled()).resolves.toBe(true);
    await form.getByRole('button', { name: 'Show generated files' }).click();
    await form.getByRole('tablist', { name: 'Generated files' }).waitFor();
    await form.getByRole('button', { name: 'Submit' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: /Submitted run .* to local as job \d+/ })
      .waitFor({ timeout: 30_000 });
  }

  it('trains a local run to compare against later', async () => {
    const { page } = browser;
    await openPage(page, 'Config');
    await page.getByLabel('Epochs').fill('1');
    await page.getByText('Valid: every named file exists.').waitFor();
    await page.getByRole('button', { name: 'Use this config for training' }).click();
    await page.getByLabel('Run name').fill('local-run');
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    // It trains while the cluster is set up; the comparison waits for it.
    await page
      .getByTestId('train-status')
      .filter({ hasText: /running|completed/ })
      .waitFor({ timeout: 60_000 });
  });

  it('adds the cluster in the settings and checks it item by item', async () => {
    const { page } = browser;
    await openPage(page, 'Cluster');
    await page.getByRole('button', { name: 'Add a cluster' }).click();
    const form = page.getByRole('form', { name: 'Cluster settings' });
    await form.getByLabel('Name', { exact: true }).fill('local');
    await form.getByLabel('Backend', { exact: true }).selectOption('slurm');
    await form.getByLabel('SSH host', { exact: true }).fill(cluster.host);
    await form.getByLabel('Partition', { exact: true }).fill(cluster.partition);
    await form.getByLabel('Engine folder', { exact: true }).fill(engineDir);
    await form.getByLabel('Python', { exact: true }).fill(python);
    await form.getByLabel('Remote work folder', { exact: true }).fill(join(work, 'remote'));
    await form.getByLabel('Data root', { exact: true }).fill(dataRoot);
    await form.getByLabel('Engine generation', { exact: true }).selectOption('0.x');
    await form.getByText('More settings (SSH, resources, environment)').click();
    await form.getByLabel('SSH config file', { exact: true }).fill(cluster.sshConfigFile);
    await form.getByLabel('CPUs per task', { exact: true }).fill('1');
    await form.getByLabel('Connect timeout (s)', { exact: true }).fill('5');
    await form
      .getByLabel('Environment (NAME=value per line)', { exact: true })
      .fill(`VSWIN_STANDIN_KEYS=${join(work, 'keys.json')}`);
    // A bad field is named before anything is saved.
    await form.getByLabel('GPUs per node', { exact: true }).fill('eight');
    await form.getByRole('button', { name: 'Save cluster' }).click();
    await expect(form.getByRole('alert').innerText()).resolves.toBe(
      'GPUs per node: expected a whole number of at least 1, received "eight"',
    );
    await form.getByLabel('GPUs per node', { exact: true }).fill('8');
    await form.getByRole('button', { name: 'Save cluster' }).click();
    const clusters = page.getByRole('table', { name: 'Clusters' });
    await clusters.waitFor();
    await expect(clusters.innerText()).resolves.toContain(cluster.host);

    await page.getByRole('button', { name: 'Check local' }).click();
    const results = page.getByRole('list', { name: 'Preflight results of local' });
    await results.waitFor({ timeout: 30_000 });
    const items = await results.getByRole('listitem').allInnerTexts();
    expect(items.map((item) => item.split(':')[0].replace(/^\W+/, ''))).toEqual(
      expect.arrayContaining(['ssh', 'scheduler', 'partition', 'gpus', 'engine', 'data-root']),
    );
    for (const item of items) expect(item).toMatch(/^✓ /);
    expect(items.find((item) => item.includes('gpus'))).toMatch(/8 GPU/);
    await expect(page.getByRole('region', { name: 'Check of local' }).innerText()).resolves.toContain(
      'local: every check passed',
    );
    await screenshot(page, 'cluster-settings-check');

    // A cluster whose key the server refuses: its check says so, item by item, and it can be removed.
    await page.getByRole('button', { name: 'Add a cluster' }).click();
    await form.getByLabel('Name', { exact: true }).fill('refused');
    await form.getByLabel('SSH host', { exact: true }).fill(cluster.badKeyHost);
    await form.getByText('More settings (SSH, resources, environment)').click();
    await form.getByLabel('SSH config file', { exact: true }).fill(cluster.sshConfigFile);
    await form.getByLabel('Connect timeout (s)', { exact: true }).fill('5');
    await form.getByRole('button', { name: 'Save cluster' }).click();
    await page.getByRole('button', { name: 'Check refused' }).click();
    const refused = page.getByRole('list', { name: 'Preflight results of refused' });
    await refused.waitFor({ timeout: 30_000 });
    await expect(refused.getByRole('listitem').allInnerTexts()).resolves.toEqual([
      expect.stringMatching(/^✗ ssh: .*refused the key/),
    ]);
    await expect(page.getByRole('region', { name: 'Check of refused' }).innerText()).resolves.toContain(
      'refused: 1 check(s) failed',
    );
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Remove refused' }).click();
    await page.getByRole('button', { name: 'Remove refused' }).waitFor({ state: 'detached' });
    await expect(page.getByRole('table', { name: 'Clusters' }).locator('tbody tr').count()).resolves.toBe(1);

    // Edit keeps the name and changes a field.
    await page.getByRole('button', { name: 'Edit local' }).click();
    await expect(form.getByLabel('SSH host', { exact: true }).inputValue()).resolves.toBe(cluster.host);
    await form.getByLabel('GPUs per node', { exact: true }).fill('4');
    await form.getByRole('button', { name: 'Save cluster' }).click();
    await page.getByRole('table', { name: 'Clusters' }).getByText('slurm (0.x, 4 GPUs/node)').waitFor();
  });

  it('shows the generated files before submitting, then follows the job to COMPLETED while its curves draw', async () => {
    const { page } = browser;
    const form = launchRegion(page);
    // The quick three-epoch config on the demo data (demo-micro itself is the 60-epoch demo recipe).
    await form.getByLabel('Run config').selectOption({ label: 'preset micro on demo' });
    await form.getByLabel('GPUs per node').fill('2');
    await form.getByLabel('Engine generation').selectOption('0.x');
    await form.getByLabel('Run name').fill('cluster-run');
    await form.getByLabel('Log interval (iterations)').fill('1');
    await form.getByLabel('Environment for this run (NAME=value per line)').fill('VSWIN_STANDIN_SLEEP=0.1');
    // The check with this run adds the base config and the annotation paths to the cluster's checks.
    await form.getByRole('button', { name: 'Check with this run' }).click();
    const runChecks = form.getByRole('list', { name: 'Preflight results of local with this run' });
    await runChecks.waitFor({ timeout: 30_000 });
    const runItems = await runChecks.getByRole('listitem').allInnerTexts();
    expect(runItems.map((item) => item.split(':')[0].replace(/^\W+/, ''))).toEqual(
      expect.arrayContaining(['base-config', 'annotations']),
    );
    for (const item of runItems) expect(item).toMatch(/^✓ /);
    await form.getByRole('button', { name: 'Show generated files' }).click();
    const tabs = page.getByRole('tablist', { name: 'Generated files' });
    await tabs.waitFor();
    const names = await tabs.getByRole('tab').allInnerTexts();
    expect(names.slice(0, 3)).toEqual(['config.py', 'job.sbatch', 'manifest.json']);
    expect(names).toEqual(expect.arrayContaining(['annotations/train.txt']));
    await expect(page.getByLabel('Contents of config.py').innerText()).resolves.toMatch(
      /_base_ = \[?'.*swin_tiny_patch244_window877_kinetics400_1k\.py/,
    );
    await page.getByRole('tab', { name: 'config.py' }).focus();
    // The tabs move with the arrow keys.
    await page.keyboard.press('ArrowRight');
    await expect(page.getByRole('tab', { name: 'job.sbatch' }).getAttribute('aria-selected')).resolves.toBe('true');
    const sbatch = await page.getByLabel('Contents of job.sbatch').innerText();
    expect(sbatch).toMatch(/#SBATCH --gres=gpu:2/);
    expect(sbatch).toMatch(/srun --partition=gpu --nodes=1 --ntasks=2 --ntasks-per-node=2 --gres=gpu:2/);
    expect(sbatch).toMatch(/export VSWIN_STANDIN_SLEEP="0\.1"/);
    await page.getByRole('tab', { name: 'manifest.json' }).click();
    const manifest = JSON.parse(await page.getByLabel('Contents of manifest.json').innerText()) as {
      gpus: number;
      itersPerEpoch: number;
      epochs: number;
      flavor: string;
    };
    expect(manifest).toMatchObject({ gpus: 2, flavor: '0.x', epochs: 3 });
    await page.getByRole('tab', { name: 'job.sbatch' }).click();
    await screenshot(page, 'cluster-launch-preview');
    const previewed = /Run (\S+) goes to/.exec(await form.getByTestId('generated-files').innerText())?.[1];
    await form.getByRole('button', { name: 'Submit' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Submitted run ${previewed} to local as job` })
      .waitFor({ timeout: 30_000 });

    // Beside the local runs: select the cluster run and watch its loss curve while the job runs.
    await openPage(page, 'Runs & checkpoints');
    await waitForState(page, 'cluster-run', /^RUNNING/, 40);
    await page.getByLabel('Select run cluster-run').check();
    const lossPlot = page.getByRole('img', { name: 'train loss per iteration of the selected runs' });
    await lossPlot.waitFor();
    const points = () =>
      lossPlot.evaluate((element) =>
        ((element as unknown as { data?: { x: number[] }[] }).data ?? []).reduce((sum, trace) => sum + trace.x.length, 0),
      );
    await page.waitForFunction(
      () => {
        const element = document.querySelector('[aria-label="train loss per iteration of the selected runs"]') as unknown as {
          data?: { x: number[] }[];
        } | null;
        return (element?.data?.[0]?.x.length ?? 0) > 1;
      },
      undefined,
      { timeout: 30_000 },
    );
    const whileRunning = await points();
    const stateThen = await jobState(page, 'cluster-run').innerText();
    expect(stateThen).toMatch(/^RUNNING/);
    expect(whileRunning).toBeGreaterThan(0);
    expect(whileRunning).toBeLessThan(manifest.itersPerEpoch * manifest.epochs);
    await screenshot(page, 'cluster-job-running-curves');
    await waitForState(page, 'cluster-run', /^COMPLETED/, 60);
    // Every iteration's loss (log interval 1) is drawn once the last poll is in.
    await page.waitForFunction(
      (expected) => {
        const element = document.querySelector('[aria-label="train loss per iteration of the selected runs"]') as unknown as {
          data?: { x: number[] }[];
        } | null;
        return (element?.data?.[0]?.x.length ?? 0) === expected;
      },
      manifest.itersPerEpoch * manifest.epochs,
      { timeout: 20_000 },
    );
    const row = page.getByRole('table', { name: 'Cluster jobs' }).locator('tr', { hasText: 'cluster-run' });
    await expect(row.innerText()).resolves.toMatch(/3\/3/);
    await expect(
      page.getByRole('table', { name: 'Runs' }).locator('tr', { hasText: 'cluster-run' }).innerText(),
    ).resolves.toMatch(/completed\s+3\/3/);
  });

  it('cancels a running job, shows a failing one as FAILED with its exit code and log, resumes it, clones a run', async () => {
    const { page } = browser;
    await openPage(page, 'Cluster');
    await launch(page, 'cancel-me', 'VSWIN_STANDIN_SLEEP=5');
    // All 8 GPUs for one job while cancel-me holds 2: it waits, with Slurm's reason.
    await launch(page, 'waits', 'VSWIN_STANDIN_SLEEP=0.1', 8);
    await waitForState(page, 'waits', /^PENDING \((Resources|Priority)\)/, 30);
    await page.getByRole('table', { name: 'Cluster jobs' }).screenshot({ path: join(SCREENSHOTS, 'cluster-job-pending.png') });
    await page.getByRole('button', { name: 'Cancel job of waits' }).click();
    await waitForState(page, 'waits', /^CANCELLED/, 30);
    // One GPU: with several ranks, srun's kill-on-bad-exit ends the job with 143 (SIGTERM) instead of the rank's code.
    await launch(page, 'fail-me', 'VSWIN_STANDIN_SLEEP=0.1\nVSWIN_STANDIN_FAIL_EPOCH=2\nVSWIN_STANDIN_EXIT_CODE=3', 1);
    await waitForState(page, 'cancel-me', /^RUNNING/, 40);
    await page.getByRole('button', { name: 'Cancel job of cancel-me' }).click();
    await waitForState(page, 'cancel-me', /^CANCELLED/, 30);
    await expect(page.getByRole('button', { name: 'Resume cancel-me' }).isVisible()).resolves.toBe(true);
    await waitForState(page, 'fail-me', /^FAILED \(exit 3\)/, 40);
    // The job's message (exit code, the output's last lines) is the row under the job's.
    await expect(
      page.locator('table[aria-label="Cluster jobs"] tr:has(td:text-is("fail-me")) + tr.job-note').innerText(),
    ).resolves.toMatch(/exit code 3.*failing at epoch 2 as asked/);
    await page.getByRole('button', { name: 'Open log of fail-me' }).click();
    const log = page.getByRole('region', { name: /^Log of job \d+$/ });
    await log.waitFor({ timeout: 20_000 });
    await expect(log.getByLabel(/^Output of job/).innerText()).resolves.toContain('stand-in: failing at epoch 2 as asked');
    await expect(log.getByLabel(/^Engine log of job/).innerText()).resolves.toContain('"mode": "val"');
    await screenshot(page, 'cluster-jobs-final');

    // Resume resubmits in the same folder: the stand-in resumes after epoch 1 and fails at epoch 2 again.
    await page.getByRole('button', { name: 'Resume fail-me' }).click();
    await page.waitForFunction(
      () => {
        const row = Array.from(document.querySelectorAll('table[aria-label="Cluster jobs"] tr')).find(
          (tr) => tr.querySelector('td')?.textContent === 'fail-me',
        );
        return /attempt 2/.test(row?.textContent ?? '') && /FAILED \(exit 3\)/.test(row?.textContent ?? '');
      },
      undefined,
      { timeout: 40_000 },
    );

    // Clone puts the run's config and launch choices back into the launch form.
    await page.getByRole('button', { name: 'Clone cluster-run' }).click();
    const form = launchRegion(page);
    // The clone arrives asynchronously (jobs.clone), then fills the form.
    await expect.poll(() => form.getByLabel('Run name').inputValue(), { timeout: 10_000 }).toBe('cluster-run (copy)');
    await expect(form.getByLabel('Run config').inputValue()).resolves.toBe('(cloned run)');
    await expect(form.getByLabel('GPUs per node').inputValue()).resolves.toBe('2');
    await form.getByRole('button', { name: 'Show generated files' }).click();
    await expect(form.getByLabel('Contents of config.py').innerText()).resolves.toContain('total_epochs = 3');
  });

  it('pulls a checkpoint, compares it beside a local one and opens it in the attention explorer', async () => {
    const { page } = browser;
    await page.getByLabel('Checkpoint of cluster-run to pull').selectOption('best');
    await page.getByRole('button', { name: 'Pull checkpoint of cluster-run' }).click();
    await page.getByText(/pulled best_top1_acc_epoch_\d\.pth of cluster-run/).waitFor({ timeout: 30_000 });
    await openPage(page, 'Training');
    await page.waitForFunction(
      () => document.querySelector('[data-testid="train-status"]')?.textContent === 'completed',
      undefined,
      { timeout: 120_000 },
    );
    await openPage(page, 'Runs & checkpoints');
    const boxes = page.getByRole('group', { name: /Checkpoints/ });
    await boxes.getByLabel(/^cluster-run epoch 3 \(best\) val 60\.0%/).check();
    await boxes
      .getByLabel(/^local-run epoch 1/)
      .first()
      .check();
    await page.getByRole('button', { name: 'Compare', exact: true }).click();
    const metrics = page.getByRole('table', { name: 'Metrics side by side' });
    await metrics.waitFor({ timeout: 90_000 });
    const rows = await metrics.locator('tbody tr').allInnerTexts();
    expect(rows).toHaveLength(2);
    expect(rows.map((row) => row.split('\t')[0]).sort()).toEqual(['cluster-run epoch 3', 'local-run epoch 1']);
    for (const row of rows) expect(row).toMatch(/1 x 1\t\d+\.\d%\t\d+\.\d%\t\d+\.\d%/);
    await screenshot(page, 'cluster-compare-pulled-checkpoint');

    // The attention explorer opens the pulled checkpoint too (it carries the run's model config).
    await openPage(page, 'Attention windows');
    await page.getByLabel('Checkpoint', { exact: true }).selectOption({ label: 'cluster-run epoch 3' });
    await page.getByRole('button', { name: 'Show windows' }).click();
    const strip = page.getByRole('group', { name: 'Sampled frames with the window grid' });
    await strip.waitFor({ timeout: 60_000 });
    await expect(strip.getByRole('button').count()).resolves.toBe(8);
  });

  it('draws the cluster page in the dark theme without console errors', async () => {
    const { page } = browser;
    await openPage(page, 'Datasets');
    // Alt+8 opens the Cluster page (it comes last in the menu); focus moves to its heading.
    await page.keyboard.press('Alt+8');
    await expect(page.getByRole('heading', { level: 1 }).innerText()).resolves.toBe('Cluster');
    await expect(page.evaluate(() => document.activeElement?.tagName)).resolves.toBe('H1');
    await page.getByRole('button', { name: 'Dark theme' }).click();
    await page.getByRole('table', { name: 'Cluster jobs' }).waitFor();
    // The Config page's config (1 epoch since the first test) is the launch form's default.
    await launchRegion(page).getByRole('button', { name: 'Show generated files' }).click();
    await expect(page.getByLabel('Contents of config.py').innerText()).resolves.toContain('total_epochs = 1');
    await screenshot(page, 'cluster-page-dark');
    await page.getByRole('button', { name: 'Light theme' }).click();
    expect(browser.errors).toEqual([]);
  });
});

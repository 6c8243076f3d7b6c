// End to end through the real CLI: train on generated videos with the streaming loader, SIGKILL in
// the middle of an epoch, the registry shows the run interrupted, --resume finishes it; then eval,
// runs list/show/export.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticDataset } from '../../core/data/synth.ts';
import { Registry } from '../../core/registry/registry.ts';

const BIN = fileURLToPath(new URL('../../bin/vswin.js', import.meta.url));
let dir: string;
let home: string;
let configFile: string;

function vswin(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, '--backend', 'wasm', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vswin-cli-'));
  home = join(dir, 'home');
  const data = join(dir, 'data');
  await generateSyntheticDataset({ outDir: data, classes: 2, perClass: 10, seed: 3, frames: 12, size: 16 });
  configFile = join(dir, 'run.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      model: { variant: 'micro', num_classes: 2, drop_path_rate: 0.1, head_dropout: 0 },
      data: {
        train_ann: 'data/train.txt',
        val_ann: 'data/val.txt',
        root: 'data/videos',
        classes: 'data/classes.txt',
        pipeline: { preset: 'small', clip_len: 4, frame_interval: 2, short_side: 16, crop_size: 16 },
        workers: 2,
      },
      optimizer: { lr: 1e-3, weight_decay: 0.05, paramwise: 'none' },
      schedule: { warmup_epochs: 0.5 },
      epochs: 4,
      batch_size: 2,
      seed: 1,
    }),
  );
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('vswin train / eval / runs', () => {
  it('reports a bad config with the field and the value', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({
        model: { variant: 'micro', num_classes: 0 },
        data: { train_ann: 'x', root: 'y', pipeline: { preset: 'small' } },
        optimizer: { lr: 1, weight_decay: 0 },
        epochs: 1,
        batch_size: 1,
      }),
    );
    const result = vswin(['train', bad, '--home', home]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/model\.num_classes: .*\(received 0\)/);
    const missing = vswin(['train', join(dir, 'absent.json'), '--home', home]);
    expect(missing.stderr).toMatch(/absent\.json: file not found/);
  });

  it('survives SIGKILL mid-epoch: the run shows as interrupted and --resume completes it', async () => {
    const child = spawn(process.execPath, [BIN, '--backend', 'wasm', 'train', configFile, '--home', home, '--name', 'killed'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const file = join(home, 'registry.sqlite');
    let runId = '';
    // Wait until the first epoch's checkpoint is committed and the second epoch is under way.
    for (let attempt = 0; attempt < 1200 && !runId; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      try {
        const db = new Database(file, { readonly: true, fileMustExist: true });
        const row = db.prepare("SELECT id, epochs_done, iteration FROM runs WHERE name = 'killed'").get() as
          { id: string; epochs_done: number; iteration: number } | undefined;
        db.close();
        if (row && row.epochs_done === 1 && row.iteration > 8) runId = row.id;
      } catch {
        // the registry does not exist yet
      }
      if (child.exitCode !== null) break;
    }
    expect(runId, `training never reached epoch 2; stderr: ${stderr}`).not.toBe('');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    const list = vswin(['runs', 'list', '--home', home]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${runId}\\s+interrupted`));

    const resumed = vswin(['train', configFile, '--home', home, '--resume', runId]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming run ${runId} from epoch 1`);
    expect(resumed.stdout).toContain(`run ${runId} completed after 4/4 epochs`);

    const registry = Registry.open(home);
    const run = registry.requireRun(runId);
    expect(run).toMatchObject({ status: 'completed', epochsDone: 4, iteration: 32 });
    const steps = registry
      .metrics(runId)
      .filter((m) => m.scope === 'iteration' && m.name === 'loss')
      .map((m) => m.step);
    expect(steps).toEqual(Array.from({ length: 32 }, (_, i) => i));
    const epochs = registry.metrics(runId).filter((m) => m.scope === 'epoch' && m.split === 'val' && m.name === 'top1');
    expect(epochs.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    const best = registry.checkpoints(runId).find((c) => c.reasons.includes('best'));
    registry.close();
    expect(best).toBeDefined();

    const evaluation = vswin([
      'eval',
      '--checkpoint',
      best!.path,
      '--ann',
      join(dir, 'data/val.txt'),
      '--root',
      join(dir, 'data/videos'),
      '--views',
      '2x3',
      '--home',
      home,
    ]);
    expect(evaluation.code, evaluation.stderr).toBe(0);
    expect(evaluation.stdout).toMatch(/1 clip x 1 crop\s+\d+\.\d%/);
    expect(evaluation.stdout).toMatch(/2 clips x 3 crops\s+\d+\.\d%/);
    const show = vswin(['runs', 'show', runId, '--home', home]);
    expect(show.stdout).toContain(`run ${runId} "killed": completed`);
    expect(show.stdout).toMatch(/evaluation \d+ 2x3 views/);

    const exported = vswin(['runs', 'export', '--csv', join(dir, 'out', 'runs.csv'), '--home', home]);
    expect(exported.code, exported.stderr).toBe(0);
    const metricsCsv = readFileSync(join(dir, 'out', 'runs-metrics.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(metricsCsv[0]).toBe('run_id,scope,split,step,epoch,name,value');
    expect(metricsCsv.filter((line) => line.startsWith(`${runId},iteration,train,`) && line.includes(',loss,'))).toHaveLength(32);
  });

  it('names a missing run id', () => {
    const result = vswin(['train', configFile, '--home', home, '--resume', 'no-such-run']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no run "no-such-run"/);
  });
});

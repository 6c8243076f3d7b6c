// The `vswin checkpoint` commands through the real CLI entry point: in-process (spawning costs over
// a second per call here), plus one child process of bin/vswin.js for the exit status.
import { PARITY_DIR } from '../../shared-fixtures.ts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '../../../core/model/weights/checkpoint.ts';
import { readSafetensors } from '../../../core/model/weights/safetensors.ts';
import { maxAbsDifference } from './compare.ts';
import { main } from '../../../core/host/cli/main.ts';

const fixtures = PARITY_DIR;
const bin = new URL('../../../bin/vswin.js', import.meta.url).pathname;
let folder: string;

async function vswin(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const out = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    process.exitCode = 0;
    await main(['node', 'vswin', ...args]);
    return { status: process.exitCode ?? 0, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = 0;
  }
}

beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'vswin-cli-'));
  const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8'));
  const { patch_3d, embed_dim, depths, num_heads, window_3d } = manifest.inflation.bicubic.case;
  writeFileSync(
    join(folder, 'bicubic.json'),
    JSON.stringify({ backbone: { patch_size: patch_3d, embed_dim, depths, num_heads, window_size: window_3d }, num_classes: 3 }),
  );
  writeFileSync(join(folder, 'visible.json'), JSON.stringify({ backbone: manifest.config.backbone, num_classes: 400 }));
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe('vswin checkpoint', () => {
  it('inspect describes the mmcv fixture and, with a config, what does not fit', async () => {
    const plain = await vswin('checkpoint', 'inspect', join(fixtures, 'checkpoint.pth'));
    expect(plain.status).toBe(0);
    expect(plain.stdout).toMatch(/kind: +3-D recognizer \(backbone \+ cls_head\)/);
    expect(plain.stdout).toMatch(
      /guessed: +embed_dim 12, depths \[2, 2, 2, 2\], num_heads \[2, 2, 4, 4\], window_size \[2, 7, 7\]/,
    );

    const json = await vswin(
      'checkpoint',
      'inspect',
      join(fixtures, 'checkpoint.pth'),
      '--model-config',
      join(folder, 'visible.json'),
      '--json',
    );
    expect(json.status).toBe(0); // only a warning: the head differs
    const diagnosis = JSON.parse(json.stdout);
    expect(diagnosis).toMatchObject({ kind: 'recognizer3d', layout: 'mmcv', tensorCount: 129 });
    expect(diagnosis.findings[0].message).toMatch(/head has 5 classes, config has 400/);
  });

  it('convert --inflate writes a 3-D backbone that matches the official inflation', async () => {
    const out = join(folder, 'inflated.safetensors');
    const result = await vswin(
      'checkpoint',
      'convert',
      join(fixtures, 'inflate_bicubic_2d.pth'),
      out,
      '--inflate',
      '--model-config',
      join(folder, 'bicubic.json'),
    );
    expect(result.stderr).toMatch(/inflate: bicubic-resized 4 relative position bias table\(s\) from 7x7 to 11x11/);
    expect(result.status).toBe(0);
    const written = loadCheckpoint(out);
    expect(written.layout).toBe('vswin');
    expect(written.metadata).toMatchObject({ format: 'vswin', inflated_from_2d: true, config: { num_classes: 3 } });
    const expected = readSafetensors(join(fixtures, 'inflate_bicubic_3d.safetensors')).tensors;
    expect(written.stateDict.size).toBe(expected.size);
    for (const [key, tensor] of expected)
      expect(maxAbsDifference(written.stateDict.get(`backbone.${key}`)!, tensor), key).toBeLessThanOrEqual(1e-5);
  });

  it('convert copies a .pth into safetensors, keeping int64 buffers', async () => {
    const out = join(folder, 'copy.safetensors');
    expect((await vswin('checkpoint', 'convert', join(fixtures, 'checkpoint.pth'), out)).status).toBe(0);
    const copy = loadCheckpoint(out);
    expect(copy.stateDict.size).toBe(129);
    expect(copy.stateDict.get('backbone.layers.0.blocks.0.attn.relative_position_index')!.fileDtype).toBe('int64');
    expect(copy.metadata).toMatchObject({ source_layout: 'mmcv', source_meta: { mmcv_version: '1.3.1' } });
  });

  it('fails with one clear line and a non-zero status on bad input', async () => {
    const missing = await vswin('checkpoint', 'inspect', join(folder, 'nope.pth'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/vswin: .*nope\.pth: cannot read the file/);
    const noConfig = await vswin(
      'checkpoint',
      'convert',
      join(fixtures, 'inflate_same_2d.pth'),
      join(folder, 'x.safetensors'),
      '--inflate',
    );
    expect(noConfig.status).toBe(1);
    expect(noConfig.stderr).toMatch(/--inflate needs --model-config/);
    const variant = await vswin('checkpoint', 'inspect', join(fixtures, 'checkpoint.pth'), '--model-config', 'swin_t');
    expect(variant.status).toBe(1);
    expect(variant.stdout).toMatch(/\[error\] file has embed_dim 12, config has 96 \(given config\)/);
    const notTwoD = await vswin(
      'checkpoint',
      'convert',
      join(fixtures, 'checkpoint.pth'),
      join(folder, 'x.safetensors'),
      '--inflate',
      '--model-config',
      join(folder, 'visible.json'),
    );
    expect(notTwoD.status).toBe(1);
    expect(notTwoD.stderr).toMatch(/is a 3-D recognizer .*not 2-D Swin weights/);
  });

  it('exits non-zero from the real bin when a file is not a checkpoint', () => {
    const result = spawnSync(process.execPath, [bin, 'checkpoint', 'inspect', join(fixtures, 'manifest.json')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^vswin: .*manifest\.json: not a checkpoint this tool reads/m);
  });
});

// The one checkpoint metadata schema: what the writer produces reads back unchanged, each earlier
// shape migrates to it, and bad or newer files are refused with the field named.
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../core/model/config.ts';
import { VARIANTS } from '../../core/model/variants.ts';
import { IssuesError } from '../../core/protocol/issues.ts';
import { checkpointMetadata, readCheckpointMetadata } from '../../core/train/checkpoint-metadata.ts';

const model = parseModelConfig({ ...VARIANTS.micro.config, num_classes: 3 });
const pipeline = { preset: 'small' as const, clip_len: 10, frame_interval: 2, short_side: 56, crop_size: 48, test_clips: 3 };
const names = ['left', 'right', 'up'];

/** What the safetensors reader hands over: every value JSON-decoded, plus the format tag. */
const decoded = (metadata: object) => ({ format: 'vswin', ...JSON.parse(JSON.stringify(metadata)) }) as Record<string, unknown>;

describe('checkpoint metadata', () => {
  it('reads back what it writes (version 2)', () => {
    const written = checkpointMetadata({
      model,
      classNames: names,
      pipeline,
      runId: 'run-1',
      projectVersion: '0.1.0',
      backend: 'wasm',
      epoch: 4,
      step: 40,
      metrics: { top1: 0.5 },
    });
    expect(written.metadata_version).toBe(2);
    expect(readCheckpointMetadata(decoded(written), 'x.safetensors')).toEqual({
      shape: 'v2',
      model,
      classNames: names,
      pipeline,
      runId: 'run-1',
      projectVersion: '0.1.0',
      epoch: 4,
    });
  });

  it('refuses to write class names that do not match the model', () => {
    expect(() => checkpointMetadata({ model, classNames: ['a'], pipeline, runId: null, projectVersion: '0.1.0' })).toThrow(
      /class_names: 1 class names for a model of 3 classes/,
    );
  });

  it('migrates the `vswin train` shape (class_names, snake_case pipeline)', () => {
    const raw = decoded({
      config: model,
      class_names: names,
      pipeline,
      project_version: '0.1.0',
      backend: 'wasm',
      run_id: 'run-cli',
      epoch: 2,
      step: 8,
      metrics: {},
    });
    expect(readCheckpointMetadata(raw, 'cli.safetensors')).toEqual({
      shape: 'cli-v1',
      model,
      classNames: names,
      pipeline,
      runId: 'run-cli',
      projectVersion: '0.1.0',
      epoch: 2,
    });
  });

  it('migrates the Training page shape (classes, camelCase pipeline, runId)', () => {
    const raw = decoded({
      config: model,
      classes: names,
      pipeline: { preset: 'small', clipLen: 10, frameInterval: 2, cropSize: 48, shortSide: 56 },
      runId: 'run-ui',
      run_id: 'run-ui',
      epoch: 3,
      step: 12,
      metrics: { top1: 1 },
    });
    expect(readCheckpointMetadata(raw, 'ui.safetensors')).toEqual({
      shape: 'service-v1',
      model,
      classNames: names,
      pipeline: { preset: 'small', clip_len: 10, frame_interval: 2, crop_size: 48, short_side: 56 },
      runId: 'run-ui',
      projectVersion: null,
      epoch: 3,
    });
  });

  it('reads a file with a model config only, and one with nothing', () => {
    expect(readCheckpointMetadata(decoded({ config: model, source: 'x.pth' }), 'converted.safetensors')).toMatchObject({
      shape: 'model-only',
      model,
      classNames: null,
      pipeline: null,
    });
    expect(readCheckpointMetadata(decoded({}), 'empty.safetensors')).toMatchObject({ shape: 'none', model: null });
  });

  it('names the bad field of a damaged file and refuses a newer version', () => {
    const bad = decoded({ config: model, class_names: names, pipeline: { ...pipeline, clip_len: 0 } });
    expect(() => readCheckpointMetadata(bad, 'bad.safetensors')).toThrow(IssuesError);
    expect(() => readCheckpointMetadata(bad, 'bad.safetensors')).toThrow(
      /pipeline stored in bad.safetensors:\n {2}clip_len: .*\(received 0\)/,
    );
    expect(() => readCheckpointMetadata(decoded({ metadata_version: 3 }), 'new.safetensors')).toThrow(
      'new.safetensors: metadata version 3 was written by a newer workbench (this one reads up to 2); update the workbench',
    );
    expect(() =>
      readCheckpointMetadata(decoded({ config: model, classes: ['a', 'b'], pipeline: { preset: 'small' } }), 'odd.safetensors'),
    ).toThrow('odd.safetensors: metadata names 2 classes but its model has 3; the file is inconsistent');
  });
});

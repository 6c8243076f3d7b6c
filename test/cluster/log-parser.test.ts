import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  epochTrainRows,
  isEngineLog,
  mergeLogs,
  orderLogFiles,
  parseLogChunk,
  parsePythonJson,
  recordsToRows,
  type LogRecord,
} from '../../core/cluster/log-parser.ts';
import type { EngineFlavor } from '../../core/protocol/cluster.ts';

const golden = (path: string) => fileURLToPath(new URL(`./golden/${path}`, import.meta.url));
const read = (path: string) => new Uint8Array(readFileSync(golden(path)));

function parseFile(flavor: EngineFlavor, path: string) {
  return { path, ...parseLogChunk(flavor, read(path), path) };
}

const find = (rows: ReturnType<typeof recordsToRows>, scope: string, split: string, step: number, name: string) =>
  rows.find((row) => row.scope === scope && row.split === split && row.step === step && row.name === name);

describe('parsePythonJson', () => {
  it('reads NaN, Infinity and -Infinity outside strings and leaves strings alone', () => {
    const value = parsePythonJson(
      '{"a": NaN, "b": Infinity, "c": -Infinity, "d": "NaN, Infinity", "e": [1, NaN], "f": "say \\"NaN\\""}',
    ) as Record<string, unknown>;
    expect(Number.isNaN(value.a)).toBe(true);
    expect(value.b).toBe(Number.POSITIVE_INFINITY);
    expect(value.c).toBe(Number.NEGATIVE_INFINITY);
    expect(value.d).toBe('NaN, Infinity');
    expect(Number.isNaN((value.e as number[])[1])).toBe(true);
    expect(value.f).toBe('say "NaN"');
  });

  it('still rejects text that is not JSON', () => {
    expect(() => parsePythonJson('{"a": nan}')).toThrow(SyntaxError);
  });
});

describe('0.x log.json', () => {
  const context = { flavor: '0.x' as const, itersPerEpoch: 4, loggedLrToBase: 10 };

  it('skips the metadata line, keeps the partial tail and maps names, steps and the LR group', () => {
    const chunk = parseFile('0.x', '0x/20240301_101500.log.json');
    const bytes = read('0x/20240301_101500.log.json');
    expect(bytes[bytes.length - 1]).not.toBe(0x0a);
    // The unfinished last line is not consumed: the next read starts at its first byte.
    expect(new TextDecoder().decode(bytes.subarray(chunk.consumedBytes))).toBe(
      '{"mode": "train", "epoch": 3, "iter": 2, "lr": 0.0009, "memo',
    );
    expect(chunk.consumedLines).toBe(6);
    expect(chunk.problems).toEqual([]);
    expect(chunk.records.map((r) => [r.kind, r.epoch])).toEqual([
      ['train', 1],
      ['train', 1],
      ['val', 1],
      ['train', 2],
      ['train', 2],
    ]);
    const rows = recordsToRows(chunk.records, context);
    // epoch 2, iter 2 with 4 iterations per epoch = global iteration 6, 0-based 5.
    expect(find(rows, 'iteration', 'train', 5, 'loss')?.value).toBeNull();
    expect(find(rows, 'iteration', 'train', 5, 'grad_norm')?.value).toBe(Number.POSITIVE_INFINITY);
    expect(find(rows, 'iteration', 'train', 7, 'grad_norm')?.value).toBe(Number.NEGATIVE_INFINITY);
    expect(find(rows, 'iteration', 'train', 1, 'loss')?.value).toBeCloseTo(1.3863, 6);
    expect(find(rows, 'iteration', 'train', 1, 'lr')?.value).toBeCloseTo(0.001, 12);
    expect(find(rows, 'iteration', 'train', 3, 'top1')?.value).toBe(0.25);
    expect(find(rows, 'epoch', 'val', 1, 'mean_class_accuracy')?.value).toBe(0.375);
    expect(find(rows, 'epoch', 'val', 1, 'top1')?.epoch).toBe(0);
  });

  it('continues from the consumed offset once the partial line is completed', () => {
    const bytes = read('0x/20240301_101500.log.json');
    const first = parseLogChunk('0.x', bytes, 'f');
    const rest = new TextEncoder().encode('ry": 5082, "loss": 0.5}\n');
    const tail = new Uint8Array(bytes.length - first.consumedBytes + rest.length);
    tail.set(bytes.subarray(first.consumedBytes));
    tail.set(rest, bytes.length - first.consumedBytes);
    const second = parseLogChunk('0.x', tail, 'f', first.consumedLines + 1);
    expect(second.records).toEqual([{ kind: 'train', epoch: 3, iteration: 2, values: { lr: 0.0009, memory: 5082, loss: 0.5 } }]);
  });

  it('names the file and line of a damaged line and goes on', () => {
    const chunk = parseFile('0.x', '0x/20240301_113000.log.json');
    expect(chunk.problems).toHaveLength(1);
    expect(chunk.problems[0]).toMatchObject({ file: '0x/20240301_113000.log.json', line: 3 });
    expect(chunk.problems[0].problem).toMatch(/not a JSON line/);
    expect(chunk.records).toHaveLength(3);
  });

  it('merges a resumed run in time order: the later file replaces what followed its resume point', () => {
    const files = [parseFile('0.x', '0x/20240301_113000.log.json'), parseFile('0.x', '0x/20240301_101500.log.json')];
    const rows = mergeLogs(files, context);
    // The first run's epoch 1 survives; its epoch 2 (NaN loss) is replaced by the resumed run's.
    expect(find(rows, 'iteration', 'train', 1, 'loss')?.value).toBeCloseTo(1.3863, 6);
    expect(find(rows, 'iteration', 'train', 5, 'loss')?.value).toBe(1.0);
    expect(find(rows, 'iteration', 'train', 7, 'loss')?.value).toBe(0.7);
    expect(find(rows, 'iteration', 'train', 7, 'grad_norm')?.value).toBe(1.4);
    expect(find(rows, 'epoch', 'val', 1, 'top1')?.value).toBe(0.5);
    expect(find(rows, 'epoch', 'val', 2, 'top1')?.value).toBe(0.75);
    const steps = [...new Set(rows.filter((r) => r.scope === 'iteration').map((r) => r.step))];
    expect(steps).toEqual([1, 3, 5, 7]);
    // A metric only the superseded lines had is gone too, not left behind.
    expect(rows.some((r) => r.name === 'loss_aux')).toBe(false);
  });

  it('averages the logged train losses of finished epochs only', () => {
    const rows = mergeLogs([parseFile('0.x', '0x/20240301_101500.log.json')], context);
    const epochRows = epochTrainRows(rows, 1);
    expect(epochRows.find((r) => r.name === 'loss')).toMatchObject({ step: 1, epoch: 0, value: (1.3863 + 1.2) / 2 });
    expect(epochRows.every((r) => r.step === 1)).toBe(true);
  });
});

describe('1.x scalars.json', () => {
  const context = { flavor: '1.x' as const, itersPerEpoch: 4, loggedLrToBase: 10 };

  it('tells train lines (global step) from val lines (step = epoch) and keeps the partial tail', () => {
    const chunk = parseFile('1.x', '1x/20240301_101500/vis_data/scalars.json');
    expect(chunk.problems).toEqual([]);
    expect(chunk.records.map((r: LogRecord) => r.kind)).toEqual(['train', 'train', 'val', 'train', 'train']);
    const rows = recordsToRows(chunk.records, context);
    expect(find(rows, 'iteration', 'train', 3, 'loss')?.value).toBe(1.2);
    expect(find(rows, 'iteration', 'train', 5, 'loss')?.value).toBeNull();
    expect(find(rows, 'iteration', 'train', 5, 'grad_norm')?.value).toBe(Number.POSITIVE_INFINITY);
    expect(find(rows, 'iteration', 'train', 5, 'epoch')).toBeUndefined();
    expect(find(rows, 'epoch', 'val', 1, 'top1')?.value).toBe(0.5);
    expect(find(rows, 'epoch', 'val', 1, 'mean_class_accuracy')?.value).toBe(0.375);
    // Timing fields of the val loop are not curves.
    expect(
      rows
        .filter((r) => r.split === 'val')
        .map((r) => r.name)
        .sort(),
    ).toEqual(['mean_class_accuracy', 'top1', 'top5']);
  });

  it('merges a resumed run folder after the first one', () => {
    const paths = ['1x/20240301_113000/vis_data/scalars.json', '1x/20240301_101500/vis_data/scalars.json'];
    expect(orderLogFiles(paths)).toEqual([paths[1], paths[0]]);
    const rows = mergeLogs(
      paths.map((p) => parseFile('1.x', p)),
      context,
    );
    expect(find(rows, 'iteration', 'train', 5, 'loss')?.value).toBe(1.0);
    expect(find(rows, 'iteration', 'train', 7, 'loss')?.value).toBe(0.7);
    expect(find(rows, 'epoch', 'val', 2, 'top1')?.value).toBe(0.75);
    expect(find(rows, 'epoch', 'val', 1, 'top1')?.value).toBe(0.5);
    expect(rows.some((r) => r.name === 'loss_aux')).toBe(false);
  });

  it('recognises log paths of each flavour', () => {
    expect(isEngineLog('1.x', 'work/20240301_101500/vis_data/scalars.json')).toBe(true);
    expect(isEngineLog('1.x', 'work/20240301_101500.log.json')).toBe(false);
    expect(isEngineLog('0.x', 'work/20240301_101500.log.json')).toBe(true);
    expect(isEngineLog('0.x', 'work/20240301_101500.log')).toBe(false);
  });

  it('reports lines without a step instead of guessing', () => {
    const chunk = parseLogChunk('1.x', new TextEncoder().encode('{"loss": 1.0}\n'), 'scalars.json');
    expect(chunk.problems[0]).toMatchObject({ line: 1 });
    expect(chunk.problems[0].problem).toMatch(/"step" must be/);
  });

  it('treats an empty read as a normal, empty state', () => {
    expect(parseLogChunk('1.x', new Uint8Array(0), 'x')).toEqual({
      records: [],
      problems: [],
      consumedBytes: 0,
      consumedLines: 0,
    });
  });
});

import { PARITY_DIR } from '../../shared-fixtures.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { NumpyArray, readPth } from '../../../core/model/weights/pth.ts';
import { readSafetensors } from '../../../core/model/weights/safetensors.ts';
import { floatToHalf } from '../../../core/model/weights/dtypes.ts';
import type { HostTensor } from '../../../core/model/weights/types.ts';
import {
  GlobalSpec,
  OrderedDictSpec,
  PickleEmitter,
  ReduceSpec,
  TensorSpec,
  TupleSpec,
  buildLegacyPth,
  buildPth,
  storageBytes,
  type StorageSpec,
} from './pth-writer.ts';
import { bitDifferences } from './compare.ts';

const fixtures = PARITY_DIR;
let folder: string;
beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'vswin-pth-'));
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const storage = (key: string, dtype: StorageSpec['dtype'], values: number[], littleEndian = true): StorageSpec => ({
  key,
  dtype,
  bytes: storageBytes(values, dtype, littleEndian),
  elements: values.length,
});

function stateDictOf(root: unknown): Record<string, HostTensor> {
  return (root as { state_dict: Record<string, HostTensor> }).state_dict;
}

describe('reading the parity checkpoint.pth', () => {
  const contents = readPth(join(fixtures, 'checkpoint.pth'));
  const stateDict = stateDictOf(contents.root);

  it('holds every tensor of weights.safetensors, bit for bit', () => {
    const { tensors } = readSafetensors(join(fixtures, 'weights.safetensors'));
    expect(tensors.size).toBeGreaterThan(100);
    for (const [name, expected] of tensors) {
      expect(stateDict[name], name).toBeDefined();
      expect(stateDict[name].fileDtype).toBe('float32');
      expect(bitDifferences(stateDict[name], expected), name).toBe(0);
    }
  });

  it('reads the int64 relative_position_index buffers (equal to the fixture index of stage 0)', () => {
    const buffers = Object.keys(stateDict).filter((key) => key.endsWith('relative_position_index'));
    expect(buffers).toHaveLength(8);
    const index = stateDict['backbone.layers.0.blocks.0.attn.relative_position_index'];
    expect(index).toMatchObject({ dtype: 'int32', fileDtype: 'int64', shape: [98, 98] });
    const reference = readSafetensors(join(fixtures, 'io.safetensors')).tensors.get('relative_position_index_stage0')!;
    expect(bitDifferences(index, reference)).toBe(0);
  });

  it('decodes the mmcv meta as plain values', () => {
    const meta = (contents.root as { meta: Record<string, unknown> }).meta;
    expect(meta).toMatchObject({ mmcv_version: '1.3.1', epoch: 0, iter: 0, CLASSES: null });
    expect(JSON.parse(meta.config as string)).toMatchObject({ embed_dim: 12, window_size: [2, 7, 7] });
    expect(contents).toMatchObject({ archiveName: 'checkpoint', byteOrder: 'little' });
  });
});

describe('torch.save files built in memory', () => {
  it('decodes float16, bfloat16, float64, int16, int8, uint8 and bool storages', () => {
    const halves = [0.5, -2, 1024, 6.103515625e-5];
    const bytes = buildPth(
      new OrderedDictSpec([
        ['half', new TensorSpec(storage('0', 'float16', halves.map(floatToHalf)), [2, 2])],
        ['brain', new TensorSpec(storage('1', 'bfloat16', [0x3fc0, 0xbf80]), [2])],
        ['double', new TensorSpec(storage('2', 'float64', [0.1, -3]), [2])],
        ['short', new TensorSpec(storage('3', 'int16', [-2]), [1])],
        ['char', new TensorSpec(storage('4', 'int8', [-128, 127]), [2])],
        ['byte', new TensorSpec(storage('5', 'uint8', [200]), [1])],
        ['flag', new TensorSpec(storage('6', 'bool', [1, 0]), [2])],
      ]),
    );
    const root = readPth(bytes, 'dtypes.pth').root as Record<string, HostTensor>;
    expect(root.half).toMatchObject({ shape: [2, 2], dtype: 'float32', fileDtype: 'float16' });
    expect([...root.half.data]).toEqual(halves);
    expect([...root.brain.data]).toEqual([1.5, -1]);
    expect([...root.double.data]).toEqual([Math.fround(0.1), -3]);
    expect([...root.short.data]).toEqual([-2]);
    expect([...root.char.data]).toEqual([-128, 127]);
    expect([...root.byte.data]).toEqual([200]);
    expect(root.flag).toMatchObject({ dtype: 'bool' });
    expect([...root.flag.data]).toEqual([1, 0]);
  });

  it('materialises strided views and storage offsets, and shares storages between views', () => {
    const values = Array.from({ length: 12 }, (_, i) => i + 0.5);
    const shared = storage('0', 'float32', values);
    const bytes = buildPth({
      full: new TensorSpec(shared, [3, 4]),
      transposed: new TensorSpec(shared, [4, 3], [1, 4]),
      row: new TensorSpec(shared, [4], [1], 8),
      column: new TensorSpec(shared, [3], [4], 1),
      broadcast: new TensorSpec(shared, [2, 3], [0, 1], 1),
    });
    const root = readPth(bytes, 'views.pth').root as Record<string, HostTensor>;
    expect([...root.full.data]).toEqual(values);
    expect(root.transposed.shape).toEqual([4, 3]);
    expect([...root.transposed.data]).toEqual([0.5, 4.5, 8.5, 1.5, 5.5, 9.5, 2.5, 6.5, 10.5, 3.5, 7.5, 11.5]);
    expect([...root.row.data]).toEqual([8.5, 9.5, 10.5, 11.5]);
    expect([...root.column.data]).toEqual([1.5, 5.5, 9.5]);
    expect([...root.broadcast.data]).toEqual([1.5, 2.5, 3.5, 1.5, 2.5, 3.5]);
  });

  it('honours a big-endian byteorder entry and deflated entries', () => {
    const root = (buildOptions: Parameters<typeof buildPth>[1], littleEndian: boolean) =>
      readPth(
        buildPth(
          {
            w: new TensorSpec(storage('0', 'float32', [1.25, -7], littleEndian), [2]),
            i: new TensorSpec(storage('1', 'int64', [123456789, -1], littleEndian), [2]),
          },
          buildOptions,
        ),
        'endian.pth',
      ).root as Record<string, HostTensor>;
    const big = root({ byteOrder: 'big' }, false);
    expect([...big.w.data]).toEqual([1.25, -7]);
    expect([...big.i.data]).toEqual([123456789, -1]);
    const deflated = root({ deflate: true, byteOrder: null }, true);
    expect([...deflated.w.data]).toEqual([1.25, -7]);
  });

  it('decodes mmcv-style meta: numpy scalars (protocol 2 bytes via _codecs.encode), sets, floats, big ints', () => {
    const float64 = new Uint8Array(new Float64Array([0.8125]).buffer);
    const latin1 = String.fromCharCode(...float64);
    const dtype = new ReduceSpec('numpy', 'dtype', ['f8', false, true]);
    const bytes = buildPth({
      meta: {
        hook_msgs: {
          best_score: new ReduceSpec('numpy.core.multiarray', 'scalar', [
            dtype,
            new ReduceSpec('_codecs', 'encode', [latin1, 'latin1']),
          ]),
        },
        seed: 2 ** 40,
        huge: 2n ** 70n,
        negative: -3,
        lr: 1e-3,
        tags: new ReduceSpec('builtins', 'set', [['a', 'b']]),
        shape: new TupleSpec([1, 2]),
        flags: [true, false, null],
      },
      state_dict: new OrderedDictSpec([['x', new TensorSpec(storage('0', 'float32', [1]), [1])]]),
    });
    const root = readPth(bytes, 'meta.pth').root as { meta: Record<string, unknown> };
    expect(root.meta).toEqual({
      hook_msgs: { best_score: 0.8125 },
      seed: 2 ** 40,
      huge: 2n ** 70n,
      negative: -3,
      lr: 1e-3,
      tags: ['a', 'b'],
      shape: [1, 2],
      flags: [true, false, null],
    });
  });

  it('keeps training-script objects as data: argparse.Namespace, yacs CfgNode, torch.Size, torch dtypes', () => {
    const emitter = new PickleEmitter().op(0x80, 2).op(0x7d, 0x28); // EMPTY_DICT, MARK
    // args = argparse.Namespace() with BUILD {'lr': 0.5}, as protocol 2 writes objects (NEWOBJ + BUILD).
    emitter.text('args').value(new GlobalSpec('argparse', 'Namespace')).op(0x29, 0x81).value({ lr: 0.5 }).op(0x62);
    // config = CfgNode (a dict subclass): NEWOBJ, then its items, then BUILD of its attributes.
    emitter
      .text('config')
      .value(new GlobalSpec('yacs.config', 'CfgNode'))
      .op(0x29, 0x81, 0x28)
      .text('DATA')
      .value({ BATCH_SIZE: 128 })
      .op(0x75);
    emitter.value({ __immutable__: false }).op(0x62);
    emitter.text('size').value(new ReduceSpec('torch', 'Size', [new TupleSpec([3, 4])]));
    emitter.text('dtype').value(new GlobalSpec('torch', 'float16'));
    emitter.op(0x75, 0x2e);
    const root = readPth(buildPth(null, { pickle: emitter.bytes() }), 'script.pth').root as Record<string, unknown>;
    expect(root.args).toMatchObject({ className: 'argparse.Namespace', state: { lr: 0.5 } });
    expect(root.config).toEqual({ DATA: { BATCH_SIZE: 128 } });
    expect(root.size).toEqual([3, 4]);
    expect(root.dtype).toBe('torch.float16');
  });

  it('decodes a pickled numpy array into a tensor', () => {
    // numpy's protocol-2 form: _reconstruct(ndarray, (0,), b'b') then BUILD (1, shape, dtype, fortran, raw bytes).
    const raw = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
    const dtype = new ReduceSpec('numpy', 'dtype', ['f4', false, true]);
    const emitter = new PickleEmitter().op(0x80, 2);
    emitter.value(
      new ReduceSpec('numpy.core.multiarray', '_reconstruct', [new GlobalSpec('numpy', 'ndarray'), new TupleSpec([0]), 'b']),
    );
    emitter
      .value(
        new TupleSpec([
          1,
          new TupleSpec([2, 3]),
          dtype,
          false,
          new ReduceSpec('_codecs', 'encode', [String.fromCharCode(...raw), 'latin1']),
        ]),
      )
      .op(0x62, 0x2e);
    const array = readPth(buildPth(null, { pickle: emitter.bytes() }), 'numpy.pth').root as NumpyArray;
    expect(array).toBeInstanceOf(NumpyArray);
    expect(array.shape).toEqual([2, 3]);
    expect([...array.tensor!.data]).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('legacy (pre-1.6) torch.save files', () => {
  const values = [0.25, -1.5, 3, 4.75, 5, 6];
  const root = () => ({
    state_dict: new OrderedDictSpec([
      ['w', new TensorSpec(storage('140', 'float32', values), [2, 3])],
      ['wt', new TensorSpec(storage('140', 'float32', values), [3, 2], [1, 3])],
      ['index', new TensorSpec(storage('7', 'int64', [5, -6]), [2])],
    ]),
    meta: { epoch: 3 },
  });

  it('reads tensors, shared storages and meta', () => {
    const contents = readPth(buildLegacyPth(root()), 'legacy.pth');
    expect(contents).toMatchObject({ container: 'legacy', byteOrder: 'little' });
    const { state_dict: stateDict, meta } = contents.root as { state_dict: Record<string, HostTensor>; meta: unknown };
    expect([...stateDict.w.data]).toEqual(values);
    expect([...stateDict.wt.data]).toEqual([0.25, 4.75, -1.5, 5, 3, 6]);
    expect([...stateDict.index.data]).toEqual([5, -6]);
    expect(meta).toEqual({ epoch: 3 });
  });

  it('honours a big-endian sys_info and reports truncated storages', () => {
    const big = readPth(
      buildLegacyPth({ w: new TensorSpec(storage('0', 'float32', values, false), [6]) }, { littleEndian: false }),
      'big.pth',
    ).root as Record<string, HostTensor>;
    expect([...big.w.data]).toEqual(values);
    expect(() => readPth(buildLegacyPth(root(), { truncateStorages: 4 }), 'cut.pth')).toThrow(
      /cut\.pth: storage 7 declares 2 int64 elements but only 12 bytes remain \(truncated file\)/,
    );
  });
});

describe('damaged and hostile .pth files', () => {
  const original = readFileSync(join(fixtures, 'checkpoint.pth'));

  it('fails fast with the file name at every cut point', () => {
    const cuts = [0, 1, 30, 600, 16_000, 100_000, Math.floor(original.length / 2), original.length - 100, original.length - 1];
    for (const cut of cuts) {
      const path = join(folder, `cut-${cut}.pth`);
      writeFileSync(path, original.subarray(0, cut));
      const started = performance.now();
      expect(() => readPth(path), `cut at ${cut}`).toThrow(new RegExp(`cut-${cut}\\.pth: `));
      expect(performance.now() - started).toBeLessThan(500);
    }
  });

  it('reports a truncated pickle inside an intact archive', () => {
    const pickle = new PickleEmitter()
      .op(0x80, 2)
      .value({ a: [1, 2, 3] })
      .bytes();
    expect(() => readPth(buildPth(null, { pickle: pickle.subarray(0, pickle.length - 3) }), 'short.pth')).toThrow(
      /short\.pth: archive\/data\.pkl: .*(truncated pickle|ended without STOP)/,
    );
    expect(() =>
      readPth(buildPth(null, { pickle: Uint8Array.from([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x41]) }), 'length.pth'),
    ).toThrow(/length\.pth: archive\/data\.pkl: needs 2147483647 more bytes but 1 remain \(truncated pickle\)/);
  });

  it('names garbage, a zip without data.pkl, and a legacy torch.save file', () => {
    const garbage = Uint8Array.from({ length: 2048 }, (_, i) => (i * 31 + 7) & 0xff);
    expect(() => readPth(garbage, 'garbage.pth')).toThrow(
      /garbage\.pth: not a PyTorch checkpoint \(a torch\.save file is a zip archive starting with "PK"; first bytes are 07 26 45/,
    );
    const zip = zipSync({ 'notes/readme.txt': new TextEncoder().encode('hello') });
    expect(() => readPth(zip, 'plain.zip')).toThrow(
      /plain\.zip: zip archive has no <name>\/data\.pkl entry, so it is not a torch\.save file \(entries: notes\/readme\.txt\)/,
    );
    expect(() => readPth(Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc]), 'old.pth')).toThrow(
      /old\.pth: magic number: needs 10 more bytes but 2 remain \(truncated pickle\)/,
    );
    expect(() => readPth(Uint8Array.from([0x80, 0x02, 0x4b, 0x07, 0x2e]), 'pickle.pth')).toThrow(
      /pickle\.pth: starts with a pickle but not with torch's magic number/,
    );
    const corruptDirectory = Uint8Array.from(original);
    const view = new DataView(corruptDirectory.buffer);
    const end = corruptDirectory.length - 22;
    view.setUint16(end + 10, 60000, true); // entry count of the end record
    // torch writes a zip64 end record too (its locator sits just before the end record).
    const zip64End = Number(view.getBigUint64(end - 12, true));
    view.setBigUint64(zip64End + 32, 60000n, true);
    expect(() => readPth(corruptDirectory, 'directory.pth')).toThrow(/directory\.pth: central directory \(60000 entries/);
  });

  it('bounds the work a small pickle can request (re-decoding one storage many times)', () => {
    const big = storage('0', 'float32', new Array(1 << 16).fill(1));
    const view = new TensorSpec(big, [1 << 16]);
    const emitter = new PickleEmitter().op(0x80, 2).op(0x5d, 0x28); // EMPTY_LIST, MARK
    emitter.value(view).op(0x71, 0); // first tensor, memoised
    // Each further element is a fresh REDUCE of _rebuild_tensor_v2 on the same storage: 70 bytes -> 65536 elements.
    for (let i = 0; i < 600; i++) emitter.value(view);
    emitter.op(0x65, 0x2e);
    const hostile = buildPth(null, { pickle: emitter.bytes(), storages: [big] });
    expect(hostile.length).toBeLessThan(400_000); // while asking for 600 x 65536 decoded elements
    const started = performance.now();
    expect(() => readPth(hostile, 'repeat.pth')).toThrow(
      /repeat\.pth: .*asks for more than \d+ decoded elements.*\(hostile or damaged file\)/,
    );
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('keeps odd keys as data: "__proto__" and a state_dict _metadata BUILD', () => {
    const weights = new TensorSpec(storage('0', 'float32', [3]), [1]);
    const root = readPth(
      buildPth(
        new OrderedDictSpec(
          [
            ['__proto__', 1],
            ['w', weights],
          ],
          { _metadata: { '': { version: 1 } } },
        ),
      ),
      'odd.pth',
    ).root as Record<string, unknown>;
    expect(Object.getPrototypeOf(root)).toBe(Object.prototype);
    expect(Object.keys(root)).toEqual(['__proto__', 'w']);
    expect(Object.getOwnPropertyDescriptor(root, '__proto__')!.value).toBe(1);
  });

  it('refuses globals outside the whitelist, naming them, without running anything', () => {
    const bytes = buildPth({ state_dict: new ReduceSpec('os', 'system', ['echo pwned']) });
    expect(() => readPth(bytes, 'evil.pth')).toThrow(/evil\.pth: archive\/data\.pkl: refusing the pickle global "os\.system"/);
    const builtin = buildPth(new ReduceSpec('builtins', 'eval', ['1+1']));
    expect(() => readPth(builtin, 'eval.pth')).toThrow(/refusing the pickle global "builtins\.eval"/);
  });

  it('checks storages against the archive: missing, too short, views out of range, int64 overflow', () => {
    const spec = storage('0', 'float32', [1, 2, 3]);
    const withoutStorage = buildPth({ w: new TensorSpec(spec, [3]) });
    const damaged = buildPth({ w: new TensorSpec({ ...spec, bytes: spec.bytes.subarray(0, 8) }, [3]) });
    expect(() => readPth(damaged, 'short-storage.pth')).toThrow(
      /short-storage\.pth: storage archive\/data\/0 holds 8 bytes but 3 float32 elements need 12/,
    );
    expect(() => readPth(buildPth({ w: new TensorSpec(spec, [2, 2]) }), 'range.pth')).toThrow(
      /range\.pth: .*size \[2, 2\], stride \[2, 1\], offset 0 reach element 3 of a 3-element storage/,
    );
    expect(() => readPth(buildPth({ i: new TensorSpec(storage('0', 'int64', [1, 2 ** 40]), [2]) }), 'overflow.pth')).toThrow(
      /overflow\.pth: .*tensor on storage data\/0, shape \[2\]: int64 element 1 is 1099511627776, which does not fit int32/,
    );
    // Remove the storage entry from an otherwise valid archive.
    const renamed = Uint8Array.from(withoutStorage);
    const text = new TextDecoder('latin1').decode(renamed);
    for (let at = text.indexOf('archive/data/0'); at >= 0; at = text.indexOf('archive/data/0', at + 1)) renamed[at + 13] = 0x39; // data/0 -> data/9
    expect(() => readPth(renamed, 'missing.pth')).toThrow(/missing\.pth: storage archive\/data\/0 is missing from the archive/);
  });
});

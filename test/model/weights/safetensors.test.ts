import { PARITY_DIR } from '../../shared-fixtures.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../../../core/model/weights/safetensors.ts';
import { floatToHalf, halfToFloat } from '../../../core/model/weights/dtypes.ts';
import type { HostTensor, TensorMap } from '../../../core/model/weights/types.ts';
import { bitDifferences } from './compare.ts';

const fixtures = PARITY_DIR;
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as {
  files: Record<string, { tensors: Record<string, { dtype: string; shape: number[] }>; metadata?: Record<string, string> }>;
};

let folder: string;
beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'vswin-safetensors-'));
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** A safetensors file with a hand-written header, to test the reader independently of the writer. */
function handMade(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const text = headerText ?? JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors reader', () => {
  it('reads the parity weights with the shapes and metadata the manifest lists', () => {
    const { tensors, metadata } = readSafetensors(join(fixtures, 'weights.safetensors'));
    const expected = manifest.files['weights.safetensors'];
    expect(tensors.size).toBe(Object.keys(expected.tensors).length);
    for (const [name, spec] of Object.entries(expected.tensors)) {
      const tensor = tensors.get(name);
      expect(tensor, name).toBeDefined();
      expect(tensor!.shape).toEqual(spec.shape);
      expect(tensor!.dtype).toBe('float32');
      expect(tensor!.data.length).toBe(spec.shape.reduce((a, b) => a * b, 1));
    }
    expect(metadata).toEqual(expected.metadata);
  });

  it('decodes every dtype: F16, BF16, F64, I64, I16, I8, U8, BOOL', () => {
    const values = [0, 1, -2.5, 65504, 2 ** -24, -0.333251953125];
    const parts: [string, string, number[], Uint8Array][] = [];
    const f16 = new Uint8Array(values.length * 2);
    values.forEach((value, i) => new DataView(f16.buffer).setUint16(i * 2, floatToHalf(value), true));
    parts.push(['half', 'F16', [values.length], f16]);
    const bf16 = new Uint8Array(4);
    new DataView(bf16.buffer).setUint16(0, 0x3fc0, true); // 1.5
    new DataView(bf16.buffer).setUint16(2, 0xc2f7, true); // -123.5
    parts.push(['brain', 'BF16', [2], bf16]);
    parts.push(['double', 'F64', [2], new Uint8Array(new Float64Array([Math.PI, -1e-3]).buffer)]);
    parts.push(['long', 'I64', [3], new Uint8Array(new BigInt64Array([0n, -5n, 2147483647n]).buffer)]);
    parts.push(['short', 'I16', [2], new Uint8Array(new Int16Array([-300, 300]).buffer)]);
    parts.push(['char', 'I8', [2], new Uint8Array(new Int8Array([-7, 7]).buffer)]);
    parts.push(['byte', 'U8', [2], Uint8Array.from([0, 255])]);
    parts.push(['flag', 'BOOL', [3], Uint8Array.from([1, 0, 1])]);
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const [name, dtype, shape, bytes] of parts) {
      header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
      offset += bytes.length;
    }
    const data = new Uint8Array(offset);
    offset = 0;
    for (const [, , , bytes] of parts) {
      data.set(bytes, offset);
      offset += bytes.length;
    }
    const { tensors } = readSafetensors(handMade(header, data), 'hand-made');
    expect([...tensors.get('half')!.data]).toEqual(values.map((value) => halfToFloat(floatToHalf(value))));
    expect([...tensors.get('half')!.data]).toEqual(values); // all exactly representable in half
    expect([...tensors.get('brain')!.data]).toEqual([1.5, -123.5]);
    expect([...tensors.get('double')!.data]).toEqual([Math.fround(Math.PI), Math.fround(-1e-3)]);
    expect(tensors.get('long')).toMatchObject({ dtype: 'int32', fileDtype: 'int64' });
    expect([...tensors.get('long')!.data]).toEqual([0, -5, 2147483647]);
    expect([...tensors.get('short')!.data]).toEqual([-300, 300]);
    expect([...tensors.get('char')!.data]).toEqual([-7, 7]);
    expect([...tensors.get('byte')!.data]).toEqual([0, 255]);
    expect(tensors.get('flag')).toMatchObject({ dtype: 'bool', fileDtype: 'bool' });
    expect([...tensors.get('flag')!.data]).toEqual([1, 0, 1]);
  });

  it('refuses an int64 that does not fit int32, naming the tensor and the value', () => {
    const bytes = handMade(
      { big: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } },
      new Uint8Array(new BigInt64Array([1n, 2n ** 40n]).buffer),
    );
    expect(() => readSafetensors(bytes, 'big.safetensors')).toThrow(
      /big\.safetensors: tensor "big": int64 element 1 is 1099511627776, which does not fit int32/,
    );
  });
});

describe('safetensors writer', () => {
  const tensor = (
    data: HostTensor['data'],
    shape: number[],
    dtype: HostTensor['dtype'],
    fileDtype: HostTensor['fileDtype'],
  ): HostTensor => ({ data, shape, dtype, fileDtype });

  it('round-trips F32, I32, I64 (when asked) and BOOL with metadata, header padded to 8 bytes', () => {
    const map: TensorMap = new Map([
      ['weights', tensor(Float32Array.from([1.5, -0, Number.MIN_VALUE, 3.4e38, NaN]), [5], 'float32', 'float32')],
      ['index', tensor(Int32Array.from([0, -1, 2147483647, 7, 8, 9]), [2, 3], 'int32', 'int64')],
      ['count', tensor(Int32Array.from([42]), [], 'int32', 'int32')],
      ['mask', tensor(Uint8Array.from([1, 0]), [2], 'bool', 'bool')],
      ['empty', tensor(new Float32Array(0), [0, 4], 'float32', 'float32')],
    ]);
    const path = join(folder, 'round-trip.safetensors');
    writeSafetensors(path, map, { format: 'vswin', step: '12' }, { keepInt64: true });
    expect(readdirSync(folder).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
    expect(header.index.dtype).toBe('I64');
    expect(header.count.dtype).toBe('I32');
    expect(header.mask.dtype).toBe('BOOL');

    const { tensors, metadata } = readSafetensors(path);
    expect(metadata).toEqual({ format: 'vswin', step: '12' });
    expect([...tensors.keys()]).toEqual([...map.keys()]);
    for (const [name, original] of map) {
      const read = tensors.get(name)!;
      expect(read.shape, name).toEqual(original.shape);
      expect(read.dtype, name).toBe(original.dtype);
      expect(
        Buffer.from(read.data.buffer, read.data.byteOffset, read.data.byteLength).equals(Buffer.from(original.data.buffer)),
        name,
      ).toBe(true);
    }
    expect(tensors.get('index')!.fileDtype).toBe('int64');
  });

  it("rewrites the fixture's tensors bit for bit", () => {
    const source = join(fixtures, 'weights.safetensors');
    const { tensors, metadata } = readSafetensors(source);
    const path = join(folder, 'copy.safetensors');
    writeSafetensors(path, tensors, metadata);
    const again = readSafetensors(path);
    for (const [name, original] of tensors) {
      const copy = again.tensors.get(name)!;
      expect(bitDifferences(copy, original), name).toBe(0);
    }
  });

  it('refuses a shape that does not match the data and the reserved name', () => {
    expect(() =>
      writeSafetensors(
        join(folder, 'bad.safetensors'),
        new Map([['x', tensor(new Float32Array(3), [2, 2], 'float32', 'float32')]]),
      ),
    ).toThrow(/tensor "x": shape \[2, 2\] has 4 elements but its data holds 3/);
    expect(() =>
      writeSafetensors(
        join(folder, 'bad.safetensors'),
        new Map([['__metadata__', tensor(new Float32Array(1), [1], 'float32', 'float32')]]),
      ),
    ).toThrow(/reserved/);
    expect(readdirSync(folder).filter((name) => name.startsWith('bad') || name.endsWith('.tmp'))).toEqual([]);
  });
});

describe('damaged safetensors files', () => {
  const original = readFileSync(join(fixtures, 'weights.safetensors'));
  const headerLength = Number(original.readBigUInt64LE(0));

  it('fails fast with the file name at every cut point', () => {
    const cuts = [0, 3, 8, 9, 8 + Math.floor(headerLength / 2), 8 + headerLength, 8 + headerLength + 1000, original.length - 1];
    for (const cut of cuts) {
      const path = join(folder, `cut-${cut}.safetensors`);
      writeFileSync(path, original.subarray(0, cut));
      const started = performance.now();
      expect(() => readSafetensors(path), `cut at ${cut}`).toThrow(
        new RegExp(`cut-${cut}\\.safetensors: .*(bytes|truncated|run past)`),
      );
      expect(performance.now() - started).toBeLessThan(500);
    }
  });

  it('names the problem for garbage, absurd header lengths and bad headers', () => {
    const garbage = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 0xff);
    expect(() => readSafetensors(garbage, 'garbage.bin')).toThrow(
      /garbage\.bin: header length field says \d+ bytes but only 4088 follow it/,
    );

    const absurd = new Uint8Array(64);
    new DataView(absurd.buffer).setBigUint64(0, 2n ** 62n, true);
    expect(() => readSafetensors(absurd, 'absurd')).toThrow(
      /absurd: header length field says 4611686018427387904 bytes but only 56 follow it/,
    );

    expect(() => readSafetensors(handMade(null, new Uint8Array(0), '{"a": [1, 2'), 'json')).toThrow(
      /json: header is not valid JSON/,
    );
    expect(() => readSafetensors(handMade([1, 2], new Uint8Array(0)), 'array')).toThrow(
      /array: header must be a JSON object, received \[1,2\]/,
    );
    expect(() =>
      readSafetensors(handMade({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), 'span'),
    ).toThrow(/span: tensor "x": F32 shape \[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/);
    expect(() =>
      readSafetensors(handMade({ x: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), 'dtype'),
    ).toThrow(/dtype: tensor "x": dtype "C64" is not supported \(expected one of F64, F32/);
    expect(() =>
      readSafetensors(handMade({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), 'shape'),
    ).toThrow(/shape: tensor "x": shape must be an array of non-negative integers, received \[-1\]/);
    expect(() =>
      readSafetensors(
        handMade(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          },
          new Uint8Array(12),
        ),
        'overlap',
      ),
    ).toThrow(/overlap: tensors "a" \[0, 8\] and "b" \[4, 12\] overlap/);
    expect(() => readSafetensors(handMade({ __metadata__: { step: 3 } }, new Uint8Array(0)), 'meta')).toThrow(
      /meta: __metadata__\.step must be a string, received 3/,
    );
    expect(() => readSafetensors(join(folder, 'does-not-exist.safetensors'))).toThrow(
      /does-not-exist\.safetensors: cannot read the file/,
    );
  });
});

// Builds torch.save-style zip files in memory for tests: the product's pickle emitter (core's
// pth-writer.ts) plus fflate's zip writer, with knobs the product never needs (deflated entries, no
// byteorder, a replaced pickle, the legacy stream). It lets tests cover what the fixtures do not:
// float16, bfloat16, float64, strided views, shared storages, big-endian archives, numpy values, damage.
import { zipSync } from 'fflate';
import type { HostDtype } from '../../../core/model/weights/types.ts';
import { PickleEmitter, type PickleInput, type StorageSpec } from '../../../core/model/weights/pth-writer.ts';

export {
  GlobalSpec,
  OrderedDictSpec,
  PickleEmitter,
  ReduceSpec,
  TensorSpec,
  TupleSpec,
  contiguousStride,
  type PickleInput,
  type StorageSpec,
} from '../../../core/model/weights/pth-writer.ts';

export interface PthOptions {
  archiveName?: string;
  byteOrder?: 'little' | 'big' | null;
  /** Deflate the entries (torch stores them; other zip tools may not). */
  deflate?: boolean;
  /** Replace the pickle bytes (damage tests). */
  pickle?: Uint8Array;
  /** Storages to add besides those `root` references (for a replaced pickle). */
  storages?: StorageSpec[];
}

/** Serialises `root` as torch.save would: archive/data.pkl, archive/data/<key>, archive/version. */
export function buildPth(root: PickleInput, options: PthOptions = {}): Uint8Array {
  const archive = options.archiveName ?? 'archive';
  const emitter = new PickleEmitter().op(0x80, 2).value(root).op(0x2e);
  const level = options.deflate ? 6 : 0;
  const files: Record<string, [Uint8Array, { level: 0 | 6 }]> = {
    [`${archive}/data.pkl`]: [options.pickle ?? emitter.bytes(), { level }],
  };
  if (options.byteOrder !== null)
    files[`${archive}/byteorder`] = [new TextEncoder().encode(options.byteOrder ?? 'little'), { level }];
  for (const storage of [...emitter.storages.values(), ...(options.storages ?? [])])
    files[`${archive}/data/${storage.key}`] = [storage.bytes, { level }];
  files[`${archive}/version`] = [new TextEncoder().encode('3\n'), { level }];
  return zipSync(files);
}

/** Little- or big-endian bytes of numbers in a file dtype (float16/bfloat16 rounded by the caller's encoder). */
export function storageBytes(values: number[], dtype: HostDtype, littleEndian = true): Uint8Array {
  const sizes: Record<HostDtype, number> = {
    float32: 4,
    float16: 2,
    bfloat16: 2,
    float64: 8,
    int64: 8,
    int32: 4,
    int16: 2,
    int8: 1,
    uint8: 1,
    bool: 1,
  };
  const bytes = new Uint8Array(values.length * sizes[dtype]);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) => {
    const at = i * sizes[dtype];
    switch (dtype) {
      case 'float32':
        return view.setFloat32(at, value, littleEndian);
      case 'float64':
        return view.setFloat64(at, value, littleEndian);
      case 'float16':
      case 'bfloat16':
      case 'int16':
        return view.setUint16(at, value & 0xffff, littleEndian);
      case 'int64':
        return view.setBigInt64(at, BigInt(value), littleEndian);
      case 'int32':
        return view.setInt32(at, value, littleEndian);
      case 'int8':
        return view.setInt8(at, value);
      case 'uint8':
      case 'bool':
        return view.setUint8(at, value);
    }
  });
  return bytes;
}

/** The pre-1.6 torch.save stream: magic, protocol 1001, sys_info, object, sorted keys, then storages. */
export function buildLegacyPth(
  root: PickleInput,
  options: { littleEndian?: boolean; truncateStorages?: number } = {},
): Uint8Array {
  const littleEndian = options.littleEndian ?? true;
  const pickle = (value: PickleInput, emitter = new PickleEmitter()) => emitter.op(0x80, 2).value(value).op(0x2e).bytes();
  const object = new PickleEmitter(true);
  const objectBytes = pickle(root, object);
  const keys = [...object.storages.keys()].sort();
  const parts = [
    pickle(0x1950a86a20f9469cfc6cn),
    pickle(1001),
    pickle({ protocol_version: 1001, little_endian: littleEndian, type_sizes: { short: 2, int: 4, long: 4 } }),
    objectBytes,
    pickle(keys),
  ];
  for (const key of keys) {
    const storage = object.storages.get(key)!;
    const count = new Uint8Array(8);
    new DataView(count.buffer).setBigUint64(0, BigInt(storage.elements), littleEndian);
    parts.push(count, storage.bytes);
  }
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return options.truncateStorages ? out.subarray(0, total - options.truncateStorages) : out;
}

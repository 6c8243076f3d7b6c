// Builds torch.save-style zip files in memory for tests: a pickle emitter for the opcodes torch uses
// (protocol 2) plus fflate's zip writer. It lets tests cover what the fixtures do not: float16,
// bfloat16, float64, strided views, shared storages, big-endian archives, numpy values and damage.
import { zipSync } from 'fflate';
import type { HostDtype } from '../../../core/model/weights/types.ts';

export interface StorageSpec {
  key: string;
  dtype: HostDtype;
  /** Raw storage bytes in the archive's byte order. */
  bytes: Uint8Array;
  elements: number;
}

/** A tensor view as torch pickles it: storage + offset + size + stride. */
export class TensorSpec {
  constructor(
    readonly storage: StorageSpec,
    readonly size: number[],
    readonly stride: number[] = contiguousStride(size),
    readonly offset = 0,
  ) {}
}

/** A global followed by REDUCE of the given arguments, e.g. a forbidden callable or a numpy scalar. */
export class ReduceSpec {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly args: PickleInput[],
  ) {}
}

/** A bare global reference (a class passed as an argument, e.g. numpy.ndarray). */
export class GlobalSpec {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}

export class OrderedDictSpec {
  /** `state` is emitted with BUILD after the items, as pickle does for a state_dict's `_metadata`. */
  constructor(
    readonly entries: [string, PickleInput][],
    readonly state?: PickleInput,
  ) {}
}

export class TupleSpec {
  constructor(readonly items: PickleInput[]) {}
}

export type PickleInput =
  | null
  | boolean
  | number
  | bigint
  | string
  | PickleInput[]
  | TensorSpec
  | ReduceSpec
  | GlobalSpec
  | OrderedDictSpec
  | TupleSpec
  | { [key: string]: PickleInput };

export function contiguousStride(size: number[]): number[] {
  const stride = new Array<number>(size.length);
  for (let d = size.length - 1, step = 1; d >= 0; d--) {
    stride[d] = step;
    step *= size[d];
  }
  return stride;
}

const storageNames: Record<HostDtype, string> = {
  float32: 'FloatStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  float64: 'DoubleStorage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

export class PickleEmitter {
  private readonly out: number[] = [];
  private readonly encoder = new TextEncoder();
  readonly storages = new Map<string, StorageSpec>();

  /** `legacy` writes the pre-1.6 persistent id ('storage', type, key, location, size, view). */
  constructor(private readonly legacy = false) {}

  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }

  op(...codes: number[]): this {
    this.out.push(...codes);
    return this;
  }

  u32(value: number): this {
    return this.op(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff);
  }

  text(value: string): this {
    const encoded = this.encoder.encode(value);
    this.op(0x58).u32(encoded.length);
    for (const byte of encoded) this.out.push(byte);
    return this;
  }

  global(module: string, name: string): this {
    this.op(0x63);
    for (const byte of this.encoder.encode(`${module}\n${name}\n`)) this.out.push(byte);
    return this;
  }

  value(input: PickleInput): this {
    if (input === null) return this.op(0x4e);
    if (input === true) return this.op(0x88);
    if (input === false) return this.op(0x89);
    if (typeof input === 'string') return this.text(input);
    if (typeof input === 'bigint') return this.long(input);
    if (typeof input === 'number') {
      if (Number.isInteger(input) && input >= 0 && input < 256) return this.op(0x4b, input);
      if (Number.isInteger(input) && input >= -(2 ** 31) && input < 2 ** 31) return this.op(0x4a).u32(input >>> 0);
      if (Number.isInteger(input)) return this.long(BigInt(input));
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setFloat64(0, input, false);
      return this.op(0x47, ...bytes);
    }
    if (Array.isArray(input)) {
      this.op(0x5d, 0x28);
      for (const item of input) this.value(item);
      return this.op(0x65);
    }
    if (input instanceof TupleSpec) {
      this.op(0x28);
      for (const item of input.items) this.value(item);
      return this.op(0x74);
    }
    if (input instanceof TensorSpec) return this.tensor(input);
    if (input instanceof GlobalSpec) return this.global(input.module, input.name);
    if (input instanceof ReduceSpec) {
      this.global(input.module, input.name);
      this.value(new TupleSpec(input.args));
      return this.op(0x52);
    }
    if (input instanceof OrderedDictSpec) {
      this.global('collections', 'OrderedDict').op(0x29, 0x52, 0x28);
      for (const [key, item] of input.entries) this.text(key).value(item);
      this.op(0x75);
      return input.state === undefined ? this : this.value(input.state).op(0x62);
    }
    this.op(0x7d, 0x28);
    for (const [key, item] of Object.entries(input)) this.text(key).value(item);
    return this.op(0x75);
  }

  private long(value: bigint): this {
    const bytes: number[] = [];
    let rest = value;
    do {
      bytes.push(Number(rest & 0xffn));
      rest >>= 8n;
    } while (
      !(rest === 0n && (bytes[bytes.length - 1] & 0x80) === 0) &&
      !(rest === -1n && (bytes[bytes.length - 1] & 0x80) !== 0)
    );
    return this.op(0x8a, bytes.length, ...bytes);
  }

  private tensor(spec: TensorSpec): this {
    this.storages.set(spec.storage.key, spec.storage);
    this.global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    this.op(0x28)
      .text('storage')
      .global('torch', storageNames[spec.storage.dtype])
      .text(spec.storage.key)
      .text('cpu')
      .value(spec.storage.elements);
    if (this.legacy) this.op(0x4e);
    this.op(0x74);
    this.op(0x51); // BINPERSID
    this.value(spec.offset).value(new TupleSpec(spec.size)).value(new TupleSpec(spec.stride)).value(false);
    this.global('collections', 'OrderedDict').op(0x29, 0x52);
    return this.op(0x74, 0x52);
  }
}

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

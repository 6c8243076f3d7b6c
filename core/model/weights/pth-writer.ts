// PyTorch checkpoints written without Python: the zip layout `torch.save` produces (PyTorch >= 1.6),
// readable by `torch.load` and mmengine's `load_checkpoint`. `archive/data.pkl` is a protocol-2 pickle
// of the object tree (tensors as torch._utils._rebuild_tensor_v2 of a persistent storage id),
// `archive/data/<key>` the raw little-endian storages, `archive/version` the format version. Entries
// are stored (not deflated) and every storage starts on a 64-byte boundary, as torch writes them.
import * as zlib from 'node:zlib';
import type { HostDtype, HostTensor, TensorMap } from './types.ts';
import { elementCount, hostBytes, isHostTensor } from './dtypes.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { toFlavorKeys, type KeyFlavor } from '../keys.ts';

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

/** A global followed by REDUCE of the given arguments, e.g. a numpy scalar. */
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

/** Emits the pickle opcodes torch uses (protocol 2); storages met along the way are collected in order. */
export class PickleEmitter {
  private chunks: Uint8Array[] = [];
  private current: number[] = [];
  private readonly encoder = new TextEncoder();
  readonly storages = new Map<string, StorageSpec>();

  /** `legacy` writes the pre-1.6 persistent id ('storage', type, key, location, size, view). */
  constructor(private readonly legacy = false) {}

  bytes(): Uint8Array {
    this.flush();
    const total = this.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    this.chunks = [out];
    return out;
  }

  private flush(): void {
    if (this.current.length) this.chunks.push(Uint8Array.from(this.current));
    this.current = [];
  }

  op(...codes: number[]): this {
    for (const code of codes) this.current.push(code);
    if (this.current.length > 65536) this.flush();
    return this;
  }

  u32(value: number): this {
    return this.op(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff);
  }

  text(value: string): this {
    const encoded = this.encoder.encode(value);
    this.op(0x58).u32(encoded.length);
    for (const byte of encoded) this.current.push(byte);
    return this;
  }

  global(module: string, name: string): this {
    this.op(0x63);
    for (const byte of this.encoder.encode(`${module}\n${name}\n`)) this.current.push(byte);
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
      if (Number.isSafeInteger(input)) return this.long(BigInt(input));
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

// CRC-32 (zip's polynomial): node:zlib's where the Node version has it, else a table.
let crcTable: Uint32Array | undefined;
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
function crc32(bytes: Uint8Array): number {
  if (typeof zlibCrc32 === 'function') return zlibCrc32(bytes) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** torch aligns each record's data to 64 bytes (an "FB" extra field pads the local header). */
const ALIGNMENT = 64;
const MAX_ZIP32 = 0xffffffff;

/**
 * A stored (uncompressed) zip archive as a list of chunks, for streaming to a file. Archives past
 * 4 GiB would need zip64 records, which this writer does not emit: they are refused.
 */
export function zipStored(entries: readonly { name: string; bytes: Uint8Array }[]): Uint8Array[] {
  const encoder = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = encoder.encode(entry.name);
    const headerEnd = offset + 30 + name.length;
    // An extra field needs 4 bytes of its own; pad so the data starts on the boundary.
    const padding = (ALIGNMENT - ((headerEnd + 4) % ALIGNMENT)) % ALIGNMENT;
    const extraLength = 4 + padding;
    const crc = crc32(entry.bytes);
    const size = entry.bytes.length;
    if (offset + 30 + name.length + extraLength + size > MAX_ZIP32)
      throw new Error(`the archive would pass 4 GiB at ${entry.name}; zip64 archives are not written`);
    // The fields local header and central record share: version needed, flags, method (stored),
    // time, date (1980-01-01), CRC, both sizes, name length.
    const common = (view: DataView, at: number) => {
      view.setUint16(at, 20, true);
      view.setUint16(at + 8, 0x21, true);
      view.setUint32(at + 10, crc, true);
      view.setUint32(at + 14, size, true);
      view.setUint32(at + 18, size, true);
      view.setUint16(at + 22, name.length, true);
    };
    const local = new Uint8Array(30 + name.length + extraLength);
    const view = new DataView(local.buffer);
    view.setUint32(0, 0x04034b50, true);
    common(view, 4);
    view.setUint16(28, extraLength, true);
    local.set(name, 30);
    view.setUint16(30 + name.length, 0x4246, true); // "FB", torch's padding field
    view.setUint16(32 + name.length, padding, true);
    const record = new Uint8Array(46 + name.length);
    const directory = new DataView(record.buffer);
    directory.setUint32(0, 0x02014b50, true);
    directory.setUint16(4, 20, true); // version made by
    common(directory, 6);
    directory.setUint32(42, offset, true);
    record.set(name, 46);
    central.push(record);
    chunks.push(local, entry.bytes);
    offset += local.length + size;
  }
  const directorySize = central.reduce((sum, record) => sum + record.length, 0);
  if (offset + directorySize > MAX_ZIP32) throw new Error('the archive would pass 4 GiB; zip64 archives are not written');
  const end = new Uint8Array(22);
  const view = new DataView(end.buffer);
  view.setUint32(0, 0x06054b50, true);
  view.setUint16(8, entries.length, true);
  view.setUint16(10, entries.length, true);
  view.setUint32(12, directorySize, true);
  view.setUint32(16, offset, true);
  return [...chunks, ...central, end];
}

/** The torch.save archive of a pickled object: data.pkl, the storages in order of use, byteorder, version. */
export function encodePth(root: PickleInput, archiveName = 'archive'): Uint8Array[] {
  const emitter = new PickleEmitter().op(0x80, 2).value(root).op(0x2e);
  const entries = [{ name: `${archiveName}/data.pkl`, bytes: emitter.bytes() }];
  for (const storage of emitter.storages.values())
    entries.push({ name: `${archiveName}/data/${storage.key}`, bytes: storage.bytes });
  entries.push({ name: `${archiveName}/byteorder`, bytes: new TextEncoder().encode('little') });
  entries.push({ name: `${archiveName}/version`, bytes: new TextEncoder().encode('3\n') });
  return zipStored(entries);
}

/**
 * A host tensor as a torch tensor on its own storage: floating data as float32 (FloatStorage),
 * integers as int64 when the file had them so (relative_position_index) else int32, bool as bool.
 */
export function tensorSpecOf(tensor: HostTensor, key: string, name = key): TensorSpec {
  const count = elementCount(tensor.shape);
  if (count !== tensor.data.length)
    throw new Error(
      `tensor "${name}": shape [${tensor.shape.join(', ')}] has ${count} elements but its data holds ${tensor.data.length}`,
    );
  const as = tensor.dtype === 'float32' ? 'F32' : tensor.dtype === 'bool' ? 'BOOL' : tensor.fileDtype === 'int64' ? 'I64' : 'I32';
  const dtype: HostDtype = as === 'F32' ? 'float32' : as === 'BOOL' ? 'bool' : as === 'I64' ? 'int64' : 'int32';
  return new TensorSpec({ key, dtype, bytes: hostBytes(tensor, as), elements: count }, [...tensor.shape]);
}

/** JSON-like metadata as pickle values (dicts, lists, strings, numbers, booleans, None). */
export function plainPickleValue(value: unknown, where = 'meta'): PickleInput {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'bigint') return value;
  if (typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map((item, i) => plainPickleValue(item, `${where}[${i}]`));
  if (typeof value === 'object' && !isHostTensor(value) && !ArrayBuffer.isView(value)) {
    const out: { [key: string]: PickleInput } = {};
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue;
      Object.defineProperty(out, key, { value: plainPickleValue(item, `${where}.${key}`), enumerable: true });
    }
    return out;
  }
  throw new Error(`${where}: a ${typeof value} cannot be stored in the checkpoint's meta (plain values only)`);
}

/**
 * Writes `{"meta": meta, "state_dict": OrderedDict(...)}` as a torch.save zip file, atomically: what
 * mmengine's `load_checkpoint` and mmcv's read (`load_from` in a config).
 */
export function writePthCheckpoint(path: string, stateDict: TensorMap, meta: Record<string, unknown> = {}): void {
  let index = 0;
  const entries: [string, PickleInput][] = [...stateDict].map(([name, tensor]) => [
    name,
    tensorSpecOf(tensor, String(index++), name),
  ]);
  const root: PickleInput = { meta: plainPickleValue(meta), state_dict: new OrderedDictSpec(entries) };
  writeFileAtomic(path, encodePth(root));
}

/**
 * Our weights for an official engine: the state dict under the target flavor's key names (1.x:
 * `backbone.norm3`, 0.x: `backbone.norm`) as a torch.save `{meta, state_dict}` file, which the
 * engine's `load_from` reads. Returns the keys written.
 */
export function writeEngineCheckpoint(
  path: string,
  stateDict: TensorMap,
  flavor: KeyFlavor,
  meta: Record<string, unknown> = {},
): string[] {
  const renamed = toFlavorKeys(stateDict, flavor);
  writePthCheckpoint(path, renamed, { ...meta, key_flavor: flavor });
  return [...renamed.keys()];
}

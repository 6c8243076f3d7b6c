// PyTorch `torch.save` files read without Python. The zip format (PyTorch >= 1.6) holds
// `<name>/data.pkl` (a pickle describing the object tree) and `<name>/data/<key>` (raw storages);
// the older stream format (readLegacy) is a row of pickles followed by the raw storages.
// The pickle is decoded by a small interpreter that knows the opcodes torch emits and a whitelist of
// globals it turns into plain values; it never calls or imports anything, and any other global is
// refused with its name. Every read is checked against the bytes left, so damage fails fast.
import type { HostDtype, HostTensor } from './types.ts';
import { ElementRangeError, decodeElements, elementCount, hostDtypeOf, itemSize } from './dtypes.ts';
import { ZipArchive } from './zip-archive.ts';
import { CheckpointFileError, readSourceBytes } from './read-bytes.ts';

export class PthError extends CheckpointFileError {}

/** A class instance the interpreter does not model (kept as data, never constructed). */
export class PickleObject {
  constructor(
    readonly className: string,
    readonly args: unknown[],
    public state: unknown = undefined,
  ) {}
}

/**
 * `getattr(cls, name)` on a class kept as data (mmengine pickles HistoryBuffer's statistics methods
 * this way): the reference only, never looked up.
 */
export class PickleAttribute {
  constructor(
    readonly className: string,
    readonly name: string,
  ) {}
}

/** numpy.dtype as found in mmcv `meta` (e.g. the dtype of `hook_msgs.best_score`). */
export class NumpyDtype {
  byteOrder: '<' | '>' | '|' | '=' = '=';
  constructor(readonly code: string) {}
}

/** numpy array decoded from `_reconstruct` + BUILD; `tensor` is set for numeric dtypes. */
export class NumpyArray {
  tensor: HostTensor | undefined;
  shape: number[] = [];
  dtype: NumpyDtype | undefined;
}

export interface PthContents {
  /** The unpickled object: plain objects for dicts, arrays for lists/tuples/sets, HostTensor leaves. */
  root: unknown;
  /** zip: PyTorch >= 1.6 archive; legacy: the older stream of pickles and raw storages. */
  container: 'zip' | 'legacy';
  /** Archive folder name inside the zip (e.g. `checkpoint`); empty for legacy files. */
  archiveName: string;
  byteOrder: 'little' | 'big';
}

const storageDtypes: Record<string, HostDtype> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

const numpyDtypes: Record<string, HostDtype> = {
  f8: 'float64',
  f4: 'float32',
  f2: 'float16',
  i8: 'int64',
  i4: 'int32',
  i2: 'int16',
  i1: 'int8',
  u1: 'uint8',
  b1: 'bool',
};

const torchDtypeNames = new Set([
  'float32',
  'float',
  'float16',
  'half',
  'bfloat16',
  'float64',
  'double',
  'int64',
  'long',
  'int32',
  'int',
  'int16',
  'int8',
  'uint8',
  'bool',
]);

/** Beyond this many elements a strided view over a smaller storage is treated as damage. */
const maxExpandedElements = 2 ** 27;
const maxElements = 2 ** 31 - 1;
/** Deepest nesting of pickled values accepted (the readers and the tools that print metadata recurse). */
const maxNesting = 100;

/** Reads a torch.save zip archive from a path or bytes. */
export function readPth(source: string | Uint8Array, label?: string): PthContents {
  const name = label ?? (typeof source === 'string' ? source : '.pth buffer');
  try {
    return readPthFrom(source, name);
  } catch (error) {
    // A last line of defence: nesting is bounded where it is built, but no input may end in a bare stack overflow.
    if (error instanceof RangeError && /call stack/i.test(error.message))
      throw new PthError(`${name}: values nested too deep to read (${error.message}); hostile or damaged file`);
    throw error;
  }
}

function readPthFrom(source: string | Uint8Array, name: string): PthContents {
  const bytes = readSourceBytes(source, name, (message) => new PthError(message));
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) return readLegacy(bytes, name);
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) {
    throw new PthError(
      `${name}: not a PyTorch checkpoint (a torch.save file is a zip archive starting with "PK"; first bytes are ` +
        `${hex(bytes.subarray(0, 8))})`,
    );
  }
  let archive: ZipArchive;
  try {
    archive = new ZipArchive(bytes, name);
  } catch (error) {
    throw new PthError((error as Error).message);
  }
  const pickleEntry =
    archive.names.find((entry) => /^[^/]+\/data\.pkl$/.test(entry)) ?? archive.names.find((entry) => entry.endsWith('data.pkl'));
  if (!pickleEntry) {
    const listed = archive.names.slice(0, 5).join(', ');
    throw new PthError(
      `${name}: zip archive has no <name>/data.pkl entry, so it is not a torch.save file (entries: ${listed || 'none'})`,
    );
  }
  const prefix = pickleEntry.slice(0, -'data.pkl'.length);
  let byteOrder: 'little' | 'big' = 'little';
  if (archive.has(`${prefix}byteorder`)) {
    const text = new TextDecoder().decode(archive.read(`${prefix}byteorder`)).trim();
    if (text !== 'little' && text !== 'big')
      throw new PthError(`${name}: ${prefix}byteorder says "${text.slice(0, 20)}"; expected "little" or "big"`);
    byteOrder = text;
  }
  // Work is bounded by the file's size: a real checkpoint decodes each stored element about once, so
  // a pickle that re-decodes the same storage over and over (quadratic work) is refused.
  const workLimit = 2 * bytes.length + 2 ** 24;
  // Views of one storage repeat its persistent id; read (and for deflated entries, inflate) it once.
  const storages = new Map<string, StorageRef>();
  const load = (pid: unknown) => {
    const key = Array.isArray(pid) ? String(pid[2]) : '';
    const cached = storages.get(key);
    if (
      cached &&
      Array.isArray(pid) &&
      pid[1] instanceof StorageType &&
      cached.fileDtype === pid[1].fileDtype &&
      cached.elements === pid[4]
    )
      return cached;
    const storage = loadStorage(archive, prefix, pid, name);
    storages.set(storage.key, storage);
    return storage;
  };
  const unpickler = new Unpickler(archive.read(pickleEntry), `${name}: ${pickleEntry}`, load, byteOrder === 'little', workLimit);
  return { root: unpickler.load(), container: 'zip', archiveName: prefix.replace(/\/$/, ''), byteOrder };
}

interface StorageRef {
  kind: 'storage';
  key: string;
  fileDtype: HostDtype;
  elements: number;
  /** null during the legacy format's first pass, which only finds where the pickle ends. */
  bytes: Uint8Array | null;
}

const legacyMagic = 0x1950a86a20f9469cfc6cn;

/**
 * The pre-1.6 format (also `_use_new_zipfile_serialization=False`): five pickles in a row (magic
 * number, protocol 1001, sys_info, the object, the sorted storage keys), then each storage as a
 * u64 element count and its raw bytes. The object refers to storages that come after it, so it is
 * read twice: once to find its end and the storage types, once with the storages in hand.
 */
function readLegacy(bytes: Uint8Array, name: string): PthContents {
  const workLimit = 2 * bytes.length + 2 ** 24;
  let position = 0;
  let littleEndian = true;
  const refuse = (): StorageRef => {
    throw new PthError(`${name}: a storage reference outside the object pickle (damaged file)`);
  };
  const next = (what: string, persistentLoad: (pid: unknown) => StorageRef = refuse) => {
    const unpickler = new Unpickler(bytes, `${name}: ${what}`, persistentLoad, littleEndian, workLimit, position);
    const value = unpickler.load();
    position = unpickler.offset;
    return value;
  };
  if (next('magic number') !== legacyMagic)
    throw new PthError(`${name}: starts with a pickle but not with torch's magic number; not a torch.save file`);
  const protocol = next('protocol version');
  if (protocol !== 1001) throw new PthError(`${name}: legacy torch.save protocol ${describeValue(protocol)}; only 1001 is known`);
  const info = next('sys_info');
  littleEndian = !isDict(info) || info.little_endian !== false;
  const objectStart = position;
  const types = new Map<string, HostDtype>();
  const parse = (pid: unknown) => {
    if (
      !Array.isArray(pid) ||
      pid[0] !== 'storage' ||
      pid.length < 5 ||
      !(pid[1] instanceof StorageType) ||
      typeof pid[2] !== 'string'
    ) {
      throw new PthError(
        `${name}: persistent id ${describeValue(pid)} is not a ('storage', type, key, location, size, view) tuple`,
      );
    }
    return { type: pid[1] as StorageType, key: pid[2] as string, view: pid[5] as unknown };
  };
  next('object pickle', (pid) => {
    const { type, key } = parse(pid);
    types.set(key, type.fileDtype);
    return { kind: 'storage', key, fileDtype: type.fileDtype, elements: Number.MAX_SAFE_INTEGER, bytes: null };
  });
  const keys = next('storage key list');
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string'))
    throw new PthError(`${name}: the storage key list is ${describeValue(keys)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storages = new Map<string, StorageRef>();
  for (const key of keys as string[]) {
    const fileDtype = types.get(key);
    if (!fileDtype) throw new PthError(`${name}: storage ${key} is listed but never used`);
    if (position + 8 > bytes.length)
      throw new PthError(`${name}: storage ${key} starts past the end of the file (truncated file)`);
    const elements = Number(view.getBigUint64(position, littleEndian));
    const length = elements * itemSize[fileDtype];
    if (!Number.isSafeInteger(length) || position + 8 + length > bytes.length) {
      throw new PthError(
        `${name}: storage ${key} declares ${elements} ${fileDtype} elements but only ${bytes.length - position - 8} bytes ` +
          `remain (truncated file)`,
      );
    }
    storages.set(key, { kind: 'storage', key, fileDtype, elements, bytes: bytes.subarray(position + 8, position + 8 + length) });
    position += 8 + length;
  }
  position = objectStart;
  const root = next('object pickle', (pid) => {
    const { key, view: viewInfo } = parse(pid);
    const storage = storages.get(key);
    if (!storage) throw new PthError(`${name}: storage ${key} is used but missing from the file (truncated or damaged)`);
    // Very old files may refer to a slice of a storage: (view key, element offset, element count).
    if (Array.isArray(viewInfo) && viewInfo.length === 3) {
      const [, offset, count] = viewInfo as [unknown, number, number];
      if (
        !Number.isSafeInteger(offset) ||
        !Number.isSafeInteger(count) ||
        offset < 0 ||
        count < 0 ||
        offset + count > storage.elements
      ) {
        throw new PthError(`${name}: storage view ${describeValue(viewInfo)} is outside storage ${key}`);
      }
      const size = itemSize[storage.fileDtype];
      return { ...storage, elements: count, bytes: storage.bytes!.subarray(offset * size, (offset + count) * size) };
    }
    return storage;
  });
  return { root, container: 'legacy', archiveName: '', byteOrder: littleEndian ? 'little' : 'big' };
}

function loadStorage(archive: ZipArchive, prefix: string, pid: unknown, name: string): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
    throw new PthError(`${name}: persistent id ${describeValue(pid)} is not a ('storage', type, key, location, size) tuple`);
  }
  const [, type, key, , elements] = pid as [string, unknown, unknown, unknown, unknown];
  if (!(type instanceof StorageType))
    throw new PthError(`${name}: storage ${describeValue(key)} has type ${describeValue(type)}; expected a torch.*Storage`);
  if (typeof key !== 'string' || !/^[\w.-]+$/.test(key))
    throw new PthError(`${name}: storage key ${describeValue(key)} is not a plain name`);
  if (!Number.isSafeInteger(elements) || (elements as number) < 0)
    throw new PthError(`${name}: storage ${key} has size ${describeValue(elements)}`);
  const entry = `${prefix}data/${key}`;
  if (!archive.has(entry))
    throw new PthError(`${name}: storage ${entry} is missing from the archive (truncated or damaged file)`);
  const needed = (elements as number) * itemSize[type.fileDtype];
  const available = archive.size(entry) ?? 0;
  // torch writes each storage's exact bytes; a deflated entry declaring more than its tensors need is
  // refused before it is inflated (the size a zip bomb announces), a shorter one is truncated.
  if (available < needed || (archive.isDeflated(entry) && available !== needed)) {
    throw new PthError(
      `${name}: storage ${entry} holds ${available} bytes but ${elements} ${type.fileDtype} elements need ${needed} ` +
        `(truncated or damaged file)`,
    );
  }
  return { kind: 'storage', key, fileDtype: type.fileDtype, elements: elements as number, bytes: archive.read(entry) };
}

class StorageType {
  constructor(
    readonly name: string,
    readonly fileDtype: HostDtype,
  ) {}
}

/** A whitelisted global: called by REDUCE/NEWOBJ with its argument tuple. */
class Callable {
  constructor(
    readonly name: string,
    readonly call: (args: unknown[]) => unknown,
  ) {}
}

/**
 * A class whose instances are kept as data (a PickleObject holding its BUILD state), never
 * constructed; `getattr` may name its attributes.
 */
class InertClass extends Callable {
  constructor(name: string) {
    super(name, (args) => new PickleObject(name, args));
  }
}

/** Classes a training checkpoint pickles besides tensors: kept as inert data. */
const inertClasses = new Set([
  // mmengine's MessageHub state (`message_hub.log_scalars`): numpy history arrays + statistics methods.
  'mmengine.logging.history_buffer.HistoryBuffer',
]);

class Unpickler {
  private position: number;
  private readonly view: DataView;
  private stack: unknown[] = [];
  private readonly marks: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private work = 0;
  /** Nesting depth of the containers built so far (a state dict is 3-6 deep; hostile files go 1e5 deep). */
  private readonly depths = new WeakMap<object, number>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly label: string,
    private readonly persistentLoad: (pid: unknown) => StorageRef,
    private readonly littleEndian: boolean,
    private readonly workLimit: number,
    start = 0,
  ) {
    this.position = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Counts elements built by calls (tensors, dicts from pairs, numpy arrays) against the limit. */
  private charge(elements: number): void {
    this.work += elements;
    if (this.work > this.workLimit) {
      this.fail(
        `the pickle asks for more than ${this.workLimit} decoded elements, far beyond what a file of this size holds (hostile ` +
          `or damaged file)`,
      );
    }
  }

  private fail(message: string): never {
    throw new PthError(`${this.label}: ${message} (at byte ${this.position})`);
  }

  /** Records that `container` holds `items`; refuses nesting deeper than any checkpoint needs. */
  private nest<T extends object>(container: T, items: unknown[]): T {
    let depth = this.depths.get(container) ?? 1;
    for (const item of items)
      if (typeof item === 'object' && item !== null) depth = Math.max(depth, (this.depths.get(item) ?? 1) + 1);
    if (depth > maxNesting)
      this.fail(`values nested more than ${maxNesting} deep; no checkpoint nests this deep (hostile or damaged pickle)`);
    this.depths.set(container, depth);
    return container;
  }

  private take(length: number): number {
    if (!Number.isSafeInteger(length) || length < 0 || this.position + length > this.bytes.length) {
      this.fail(`needs ${length} more bytes but ${this.bytes.length - this.position} remain (truncated pickle)`);
    }
    const at = this.position;
    this.position += length;
    return at;
  }

  private u8 = () => this.bytes[this.take(1)];
  private u16 = () => this.view.getUint16(this.take(2), true);
  private u32 = () => this.view.getUint32(this.take(4), true);
  private u64 = () => Number(this.view.getBigUint64(this.take(8), true));
  private text = (length: number) => new TextDecoder().decode(this.bytes.subarray(this.take(length), this.position));
  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.position);
    if (end < 0) this.fail('unterminated text line (truncated pickle)');
    const value = new TextDecoder().decode(this.bytes.subarray(this.position, end));
    this.position = end + 1;
    return value;
  }

  private pop(): unknown {
    if (this.stack.length === 0) this.fail('stack underflow (damaged pickle)');
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length === 0) this.fail('stack underflow (damaged pickle)');
    return this.stack[this.stack.length - 1];
  }

  private popMark(): unknown[] {
    const items = this.stack;
    const previous = this.marks.pop();
    if (!previous) this.fail('MARK expected but none is open (damaged pickle)');
    this.stack = previous as unknown[];
    return items;
  }

  /** Byte position after the last opcode read (after STOP once load() returns). */
  get offset(): number {
    return this.position;
  }

  load(): unknown {
    for (;;) {
      if (this.position >= this.bytes.length) this.fail('ended without STOP (truncated pickle)');
      const opcode = this.u8();
      switch (opcode) {
        case 0x80: // PROTO
          if (this.u8() > 5) this.fail('pickle protocol above 5');
          break;
        case 0x95: // FRAME: framing is only a read hint
          this.u64();
          break;
        case 0x2e: // STOP
          if (this.stack.length !== 1 || this.marks.length)
            this.fail(`STOP with ${this.stack.length} values on the stack (damaged pickle)`);
          return this.stack[0];
        case 0x28: // MARK
          this.marks.push(this.stack);
          this.stack = [];
          break;
        case 0x7d: // EMPTY_DICT
          this.stack.push(newDict());
          break;
        case 0x5d: // EMPTY_LIST
          this.stack.push([]);
          break;
        case 0x29: // EMPTY_TUPLE
          this.stack.push([]);
          break;
        case 0x8f: // EMPTY_SET
          this.stack.push([]);
          break;
        case 0x64: {
          // DICT
          const items = this.popMark();
          const dict = newDict();
          for (let i = 0; i + 1 < items.length; i += 2) setKey(dict, items[i], items[i + 1]);
          this.stack.push(this.nest(dict, items));
          break;
        }
        case 0x6c: // LIST
        case 0x74: // TUPLE
        case 0x91: {
          // FROZENSET; popMark swaps this.stack, so take the items before pushing
          const items = this.popMark();
          this.stack.push(this.nest(items, items));
          break;
        }
        case 0x85: // TUPLE1
          const only = [this.pop()];
          this.stack.push(this.nest(only, only));
          break;
        case 0x86: {
          // TUPLE2
          const second = this.pop();
          const pair = [this.pop(), second];
          this.stack.push(this.nest(pair, pair));
          break;
        }
        case 0x87: {
          // TUPLE3
          const third = this.pop();
          const second = this.pop();
          const triple = [this.pop(), second, third];
          this.stack.push(this.nest(triple, triple));
          break;
        }
        case 0x58: // BINUNICODE
          this.stack.push(this.text(this.u32()));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.stack.push(this.text(this.u8()));
          break;
        case 0x8d: // BINUNICODE8
          this.stack.push(this.text(this.u64()));
          break;
        case 0x54: {
          // BINSTRING (Python 2 str): latin-1 text
          const length = this.view.getInt32(this.take(4), true);
          this.stack.push(latin1(this.bytes.subarray(this.take(length), this.position)));
          break;
        }
        case 0x55: // SHORT_BINSTRING
          this.stack.push(latin1(this.bytes.subarray(this.take(this.u8()), this.position)));
          break;
        case 0x42: // BINBYTES
          this.stack.push(Uint8Array.prototype.slice.call(this.bytes, this.take(this.u32()), this.position));
          break;
        case 0x43: // SHORT_BINBYTES
          this.stack.push(Uint8Array.prototype.slice.call(this.bytes, this.take(this.u8()), this.position));
          break;
        case 0x8e: // BINBYTES8
          this.stack.push(Uint8Array.prototype.slice.call(this.bytes, this.take(this.u64()), this.position));
          break;
        case 0x4a: // BININT
          this.stack.push(this.view.getInt32(this.take(4), true));
          break;
        case 0x4b: // BININT1
          this.stack.push(this.u8());
          break;
        case 0x4d: // BININT2
          this.stack.push(this.u16());
          break;
        case 0x8a: // LONG1
          this.stack.push(this.long(this.u8()));
          break;
        case 0x8b: {
          // LONG4
          const length = this.u32();
          if (length > 1024) this.fail(`LONG4 of ${length} bytes is not a plausible checkpoint value`);
          this.stack.push(this.long(length));
          break;
        }
        case 0x49: {
          // INT (text; protocol 0, also encodes True/False as 01/00)
          const value = this.line();
          if (value === '01' || value === '00') this.stack.push(value === '01');
          else if (/^-?\d+$/.test(value)) this.stack.push(Number(value));
          else this.fail(`INT with text ${JSON.stringify(value.slice(0, 20))}`);
          break;
        }
        case 0x47: // BINFLOAT (big-endian double)
          this.stack.push(this.view.getFloat64(this.take(8), false));
          break;
        case 0x4e: // NONE
          this.stack.push(null);
          break;
        case 0x88: // NEWTRUE
          this.stack.push(true);
          break;
        case 0x89: // NEWFALSE
          this.stack.push(false);
          break;
        case 0x73: {
          // SETITEM
          const value = this.pop();
          const key = this.pop();
          setKey(this.nest(this.dictOnTop('SETITEM'), [value]), key, value);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.popMark();
          const dict = this.nest(this.dictOnTop('SETITEMS'), items);
          if (items.length % 2) this.fail('SETITEMS with an odd number of values');
          for (let i = 0; i < items.length; i += 2) setKey(dict, items[i], items[i + 1]);
          break;
        }
        case 0x61: {
          // APPEND
          const value = this.pop();
          this.nest(this.listOnTop('APPEND'), [value]).push(value);
          break;
        }
        case 0x65: // APPENDS
        case 0x90: {
          // ADDITEMS (sets become arrays)
          const items = this.popMark();
          const list = this.nest(this.listOnTop(opcode === 0x65 ? 'APPENDS' : 'ADDITEMS'), items);
          for (const item of items) list.push(item);
          break;
        }
        case 0x71: // BINPUT
          this.memo.set(this.u8(), this.top());
          break;
        case 0x72: // LONG_BINPUT
          this.memo.set(this.u32(), this.top());
          break;
        case 0x94: // MEMOIZE
          this.memo.set(this.memo.size, this.top());
          break;
        case 0x68: // BINGET
          this.stack.push(this.recall(this.u8()));
          break;
        case 0x6a: // LONG_BINGET
          this.stack.push(this.recall(this.u32()));
          break;
        case 0x30: // POP
          this.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.stack.push(this.top());
          break;
        case 0x63: {
          // GLOBAL "module\nname\n"
          const module = this.line();
          this.stack.push(this.resolve(module, this.line()));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.stack.push(this.resolve(module as string, name as string));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const callable = this.pop();
          this.stack.push(this.invoke(callable, args));
          break;
        }
        case 0x81: {
          // NEWOBJ: cls.__new__(cls, *args)
          const args = this.pop();
          const callable = this.pop();
          this.stack.push(this.invoke(callable, args));
          break;
        }
        case 0x62: {
          // BUILD
          const state = this.pop();
          this.build(this.top(), state);
          break;
        }
        case 0x51: {
          // BINPERSID
          const pid = this.pop();
          this.stack.push(this.persistentLoad(pid));
          break;
        }
        default:
          this.position--;
          this.fail(
            `unsupported pickle opcode 0x${opcode.toString(16).padStart(2, '0')} (not one torch.save emits; damaged file?)`,
          );
      }
    }
  }

  private long(length: number): number | bigint {
    if (length === 0) return 0;
    const at = this.take(length);
    let value = 0n;
    for (let i = length - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.bytes[at + i]);
    if (this.bytes[at + length - 1] & 0x80) value -= 1n << BigInt(8 * length);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  private recall(index: number): unknown {
    if (!this.memo.has(index)) this.fail(`memo entry ${index} was never stored (damaged pickle)`);
    return this.memo.get(index);
  }

  private dictOnTop(opcode: string): Record<string, unknown> {
    const target = this.top();
    if (!isDict(target)) this.fail(`${opcode} needs a dict, found ${describeValue(target)}`);
    return target as Record<string, unknown>;
  }

  private listOnTop(opcode: string): unknown[] {
    const target = this.top();
    if (!Array.isArray(target)) this.fail(`${opcode} needs a list, found ${describeValue(target)}`);
    return target as unknown[];
  }

  private invoke(callable: unknown, args: unknown): unknown {
    if (!Array.isArray(args)) this.fail(`call arguments must be a tuple, found ${describeValue(args)}`);
    if (callable instanceof Callable) {
      try {
        return callable.call(args as unknown[]);
      } catch (error) {
        if (error instanceof PthError) throw error;
        return this.fail(`${callable.name}: ${(error as Error).message}`);
      }
    }
    return this.fail(`cannot call ${describeValue(callable)}`);
  }

  private build(target: unknown, state: unknown): void {
    if (isDict(target)) return; // OrderedDict state (e.g. state_dict._metadata): version info only.
    if (isHostTensorLike(target)) return; // Parameter/tensor python attributes.
    if (target instanceof NumpyDtype) {
      if (Array.isArray(state) && typeof state[1] === 'string') target.byteOrder = state[1] as NumpyDtype['byteOrder'];
      return;
    }
    if (target instanceof NumpyArray) return this.buildNumpyArray(target, state);
    if (target instanceof PickleObject) {
      target.state = state;
      return;
    }
    this.fail(`BUILD on ${describeValue(target)}`);
  }

  private buildNumpyArray(target: NumpyArray, state: unknown): void {
    // State is (version, shape, dtype, is_fortran, raw bytes or list).
    if (!Array.isArray(state) || state.length < 5) this.fail('numpy array state is not (version, shape, dtype, fortran, data)');
    const [, shape, dtype, fortran, raw] = state as [unknown, unknown, unknown, unknown, unknown];
    if (!Array.isArray(shape) || !shape.every((size) => Number.isSafeInteger(size) && size >= 0))
      this.fail(`numpy shape ${describeValue(shape)}`);
    target.shape = shape as number[];
    target.dtype = dtype instanceof NumpyDtype ? dtype : undefined;
    const fileDtype = target.dtype ? numpyDtypes[target.dtype.code] : undefined;
    if (!fileDtype || fortran || !(raw instanceof Uint8Array)) return;
    const count = elementCount(target.shape);
    this.charge(count);
    if (raw.length !== count * itemSize[fileDtype])
      this.fail(`numpy array of shape [${target.shape.join(', ')}] has ${raw.length} data bytes`);
    const little = target.dtype!.byteOrder !== '>';
    target.tensor = {
      shape: target.shape,
      data: decodeElements(raw, 0, fileDtype, count, little),
      dtype: hostDtypeOf(fileDtype),
      fileDtype,
    };
  }

  private resolve(module: string, name: string): unknown {
    const qualified = `${module}.${name}`;
    if (module === 'torch' && name in storageDtypes) return new StorageType(name, storageDtypes[name]);
    // torch dtype objects (e.g. in optimizer or AMP state) are plain names here.
    if (module === 'torch' && torchDtypeNames.has(name)) return `torch.${name}`;
    const numpyModule = module.replace(/^numpy\._core\./, 'numpy.core.');
    switch (numpyModule === module ? qualified : `${numpyModule}.${name}`) {
      case 'collections.OrderedDict':
      case 'builtins.dict':
      case '__builtin__.dict':
        return new Callable(qualified, (args) => {
          const dict = newDict();
          if (Array.isArray(args[0])) {
            this.charge(args[0].length);
            for (const pair of args[0]) if (Array.isArray(pair)) setKey(dict, pair[0], pair[1]);
          }
          return dict;
        });
      case 'builtins.set':
      case 'builtins.frozenset':
      case '__builtin__.set':
      case '__builtin__.frozenset':
      case 'builtins.list':
      case 'builtins.tuple':
        // The argument itself, not a copy: copying would let a tiny pickle cost quadratic work.
        return new Callable(qualified, (args) => (Array.isArray(args[0]) ? args[0] : []));
      case 'torch._utils._rebuild_tensor_v2':
      case 'torch._utils._rebuild_tensor':
        return new Callable(qualified, (args) => this.rebuildTensor(args));
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        return new Callable(qualified, (args) => args[0]);
      case '_codecs.encode':
        // Protocol 2 stores Python bytes as encode(text, 'latin1').
        return new Callable(qualified, (args) => {
          if (typeof args[0] !== 'string') throw new Error(`expected text, received ${describeValue(args[0])}`);
          return Uint8Array.from(args[0], (char) => char.charCodeAt(0) & 0xff);
        });
      case 'numpy.dtype':
        return new Callable(qualified, (args) => new NumpyDtype(String(args[0])));
      case 'numpy.ndarray':
        return new Callable(qualified, () => new NumpyArray());
      case 'numpy.core.multiarray._reconstruct':
        return new Callable(qualified, () => new NumpyArray());
      case 'numpy.core.multiarray.scalar':
        return new Callable(qualified, (args) => numpyScalar(args));
      case 'torch.Size':
        return new Callable(qualified, (args) => (Array.isArray(args[0]) ? args[0] : []));
      case 'torch.device':
        return new Callable(qualified, (args) => args.map(String).join(':'));
      // Training scripts store their settings with these; kept as data (a dict, or an object whose
      // BUILD state holds the attributes), never constructed.
      case 'argparse.Namespace':
        return new Callable(qualified, (args) => new PickleObject(qualified, args));
      case 'yacs.config.CfgNode':
        return new Callable(qualified, () => newDict());
      case 'builtins.getattr':
      case '__builtin__.getattr':
        // Only as a reference to an attribute of an inert class (mmengine: `getattr(HistoryBuffer, 'min')`).
        return new Callable(qualified, (args) => {
          const [owner, attribute] = args;
          if (!(owner instanceof InertClass))
            throw new Error(`only attributes of classes kept as data are read, received ${describeValue(owner)}`);
          if (typeof attribute !== 'string' || !/^[A-Za-z_]\w*$/.test(attribute))
            throw new Error(`attribute name ${describeValue(attribute)} is not a plain name`);
          return new PickleAttribute(owner.name, attribute);
        });
      default:
        if (inertClasses.has(qualified)) return new InertClass(qualified);
        return this.fail(
          `refusing the pickle global "${qualified}": only tensors, storages, OrderedDict and plain numpy/python values are ` +
            `decoded (nothing in a checkpoint is ever executed)`,
        );
    }
  }

  private rebuildTensor(args: unknown[]): HostTensor {
    const [storage, offset, size, stride] = args;
    if (!isStorage(storage)) throw new Error(`first argument must be a storage, received ${describeValue(storage)}`);
    const where = `tensor on storage data/${storage.key}`;
    if (!Number.isSafeInteger(offset) || (offset as number) < 0)
      throw new Error(`${where}: storage offset ${describeValue(offset)}`);
    const shape = size as number[];
    const strides = stride as number[];
    if (!Array.isArray(shape) || !shape.every((value) => Number.isSafeInteger(value) && value >= 0)) {
      throw new Error(`${where}: size must be non-negative integers, received ${describeValue(size)}`);
    }
    if (
      !Array.isArray(strides) ||
      strides.length !== shape.length ||
      !strides.every((value) => Number.isSafeInteger(value) && value >= 0)
    ) {
      throw new Error(`${where}: stride ${describeValue(stride)} does not match size [${shape.join(', ')}]`);
    }
    const count = elementCount(shape);
    if (count > maxElements || (count > storage.elements && count > maxExpandedElements)) {
      throw new Error(`${where}: a view of ${count} elements over a storage of ${storage.elements} is not plausible`);
    }
    this.charge(count);
    let last = offset as number;
    for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * strides[d];
    if (count > 0 && last >= storage.elements) {
      throw new Error(
        `${where}: size [${shape.join(', ')}], stride [${strides.join(', ')}], offset ${offset} reach element ${last} of a ` +
          `${storage.elements}-element storage`,
      );
    }
    let contiguous = true;
    for (let d = shape.length - 1, expected = 1; d >= 0; d--) {
      if (shape[d] !== 1 && strides[d] !== expected) contiguous = false;
      expected *= shape[d];
    }
    const start = offset as number;
    // Non-contiguous views are materialised: output element i (row-major) -> storage index.
    const index = contiguous
      ? undefined
      : (i: number) => {
          let rest = i;
          let at = start;
          for (let d = shape.length - 1; d >= 0; d--) {
            const coordinate = rest % shape[d];
            rest = (rest - coordinate) / shape[d];
            at += coordinate * strides[d];
          }
          return at;
        };
    if (storage.bytes === null)
      return { shape: [...shape], data: new Float32Array(0), dtype: 'float32', fileDtype: storage.fileDtype };
    const byteOffset = contiguous ? start * itemSize[storage.fileDtype] : 0;
    let data: HostTensor['data'];
    try {
      data = decodeElements(storage.bytes, byteOffset, storage.fileDtype, count, this.littleEndian, index);
    } catch (error) {
      if (error instanceof ElementRangeError) throw new Error(`${where}, shape [${shape.join(', ')}]: ${error.message}`);
      throw error;
    }
    return { shape: [...shape], data, dtype: hostDtypeOf(storage.fileDtype), fileDtype: storage.fileDtype };
  }
}

function numpyScalar(args: unknown[]): unknown {
  const [dtype, raw] = args;
  const fileDtype = dtype instanceof NumpyDtype ? numpyDtypes[dtype.code] : undefined;
  if (!fileDtype || !(raw instanceof Uint8Array) || raw.length !== itemSize[fileDtype])
    return new PickleObject('numpy.core.multiarray.scalar', args);
  const little = (dtype as NumpyDtype).byteOrder !== '>';
  if (fileDtype === 'int64') return Number(new DataView(raw.buffer, raw.byteOffset, 8).getBigInt64(0, little));
  if (fileDtype === 'float64') return new DataView(raw.buffer, raw.byteOffset, 8).getFloat64(0, little);
  const value = decodeElements(raw, 0, fileDtype, 1, little)[0];
  return fileDtype === 'bool' ? value === 1 : value;
}

function isStorage(value: unknown): value is StorageRef {
  return typeof value === 'object' && value !== null && (value as StorageRef).kind === 'storage';
}

function isHostTensorLike(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'fileDtype' in value && 'data' in value;
}

const dictTag = Symbol('pickle dict');

function newDict(): Record<string, unknown> {
  const dict: Record<string, unknown> = {};
  Object.defineProperty(dict, dictTag, { value: true, enumerable: false });
  return dict;
}

/** True for dicts produced by the unpickler (plain objects, insertion-ordered). */
export function isDict(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[dictTag] === true;
}

/** A dict key as text: tuples and other values are spelled out, bounded in depth and length, cycles named. */
function keyText(key: unknown, ancestors: unknown[] = []): string {
  if (typeof key === 'string') return ancestors.length ? JSON.stringify(key) : key;
  if (typeof key === 'number' || typeof key === 'bigint' || typeof key === 'boolean') return String(key);
  if (key === null || key === undefined) return 'null';
  if (ancestors.includes(key)) return '[cycle]';
  if (ancestors.length >= 8) return '[...]';
  if (Array.isArray(key)) {
    const inner = key.slice(0, 16).map((item) => keyText(item, [...ancestors, key]));
    return `[${inner.join(',')}${key.length > 16 ? ',...' : ''}]`;
  }
  return `[${describeValue(key)}]`;
}

function setKey(dict: Record<string, unknown>, key: unknown, value: unknown): void {
  const text = keyText(key);
  const name = text.length > 1000 ? `${text.slice(0, 997)}...` : text;
  // defineProperty: a key named "__proto__" must stay data, never reach the prototype.
  Object.defineProperty(dict, name, { value, enumerable: true, writable: true, configurable: true });
}

function latin1(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += String.fromCharCode(byte);
  return out;
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join(' ') || '(empty)';
}

function describeValue(value: unknown): string {
  if (value instanceof Callable) return `global ${value.name}`;
  if (value instanceof StorageType) return `torch.${value.name}`;
  if (value instanceof PickleObject) return `object ${value.className}`;
  if (value instanceof PickleAttribute) return `attribute ${value.className}.${value.name}`;
  if (Array.isArray(value)) return `a sequence of ${value.length}`;
  if (isDict(value)) return 'a dict';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  if (typeof value === 'object' && value !== null) return 'an object';
  return String(value);
}

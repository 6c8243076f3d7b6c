// safetensors reader and writer (https://github.com/huggingface/safetensors, format section):
// u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__},
// then raw little-endian data. Every field is validated before any tensor is allocated, so a
// corrupt file fails with a message naming the file and the field instead of allocating garbage.
import type { HostDtype, HostTensor, TensorMap } from './types.ts';
import { ElementRangeError, decodeElements, elementCount, hostBytes, hostDtypeOf, itemSize } from './dtypes.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { CheckpointFileError, jsonNestingBeyond, readSourceBytes } from './read-bytes.ts';

export interface SafetensorsContents {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

const fileDtypes: Record<string, HostDtype> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

/** The reference implementation refuses larger headers too; it bounds the JSON we parse. */
const maxHeaderBytes = 100 * 1024 * 1024;
/** {tensor: {shape: [..]}} is 3 deep; metadata values are strings. */
const maxHeaderNesting = 8;

export class SafetensorsError extends CheckpointFileError {}

/** Reads a safetensors file (path) or buffer; `label` names the source in errors when given bytes. */
export function readSafetensors(source: string | Uint8Array, label?: string): SafetensorsContents {
  const name = label ?? (typeof source === 'string' ? source : 'safetensors buffer');
  const bytes = readSourceBytes(source, name, (message) => new SafetensorsError(message));
  const fail = (message: string): never => {
    throw new SafetensorsError(`${name}: ${message}`);
  };

  if (bytes.length < 8) fail(`file is ${bytes.length} bytes; a safetensors file starts with an 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(bytes.length - 8)) {
    fail(
      `header length field says ${declared} bytes but only ${bytes.length - 8} follow it (truncated file, or not a ` +
        `safetensors file)`,
    );
  }
  const headerLength = Number(declared);
  if (headerLength > maxHeaderBytes) fail(`header length ${headerLength} bytes exceeds the ${maxHeaderBytes}-byte limit`);
  if (headerLength < 2) fail(`header length ${headerLength} bytes is too short for a JSON object`);

  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    return fail('header is not valid UTF-8 (not a safetensors file?)');
  }
  // A header is 3 levels deep; JSON nested thousands deep would exhaust the stack of whatever walks it next.
  const deep = jsonNestingBeyond(headerText, maxHeaderNesting);
  if (deep !== null)
    fail(
      `header nests JSON more than ${maxHeaderNesting} levels deep at header character ${deep} ` +
        `(expected {name: {dtype, shape, data_offsets}})`,
    );
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (error) {
    return fail(`header is not valid JSON: ${(error as Error).message}; it begins ${JSON.stringify(headerText.slice(0, 60))}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    fail(`header must be a JSON object, received ${describe(header)}`);
  }

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  interface Entry {
    name: string;
    fileDtype: HostDtype;
    shape: number[];
    begin: number;
    end: number;
  }
  const entries: Entry[] = [];
  for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
        fail(`__metadata__ must be an object of strings, received ${describe(raw)}`);
      for (const [field, value] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof value !== 'string') fail(`__metadata__.${field} must be a string, received ${describe(value)}`);
        Object.defineProperty(metadata, field, { value, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      fail(`tensor "${key}": expected {dtype, shape, data_offsets}, received ${describe(raw)}`);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    const fileDtype = typeof dtype === 'string' && Object.hasOwn(fileDtypes, dtype) ? fileDtypes[dtype] : undefined;
    if (fileDtype === undefined)
      fail(`tensor "${key}": dtype ${describe(dtype)} is not supported (expected one of ${Object.keys(fileDtypes).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every((size) => Number.isSafeInteger(size) && size >= 0)) {
      fail(`tensor "${key}": shape must be an array of non-negative integers, received ${describe(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((offset) => Number.isSafeInteger(offset) && offset >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(`tensor "${key}": data_offsets must be [begin, end] with 0 <= begin <= end, received ${describe(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength)
      fail(
        `tensor "${key}": data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes; truncated file?)`,
      );
    const expectedBytes = elementCount(shape as number[]) * itemSize[fileDtype as HostDtype];
    if (expectedBytes !== end - begin) {
      fail(
        `tensor "${key}": ${dtype} shape [${(shape as number[]).join(', ')}] needs ${expectedBytes} bytes but data_offsets ` +
          `[${begin}, ${end}] span ${end - begin}`,
      );
    }
    entries.push({ name: key, fileDtype: fileDtype as HostDtype, shape: shape as number[], begin, end });
  }

  // File order is data order (JSON object key order is not reliable for integer-like names).
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < entries.length; i++) {
    const previous = entries[i - 1];
    const current = entries[i];
    if (current.begin < previous.end) {
      fail(
        `tensors "${previous.name}" [${previous.begin}, ${previous.end}] and "${current.name}" [${current.begin}, ` +
          `${current.end}] overlap`,
      );
    }
  }

  const tensors: TensorMap = new Map();
  for (const entry of entries) {
    let data: HostTensor['data'];
    try {
      data = decodeElements(bytes, dataStart + entry.begin, entry.fileDtype, elementCount(entry.shape), true);
    } catch (error) {
      if (error instanceof ElementRangeError) return fail(`tensor "${entry.name}": ${error.message}`);
      throw error;
    }
    tensors.set(entry.name, { shape: entry.shape, data, dtype: hostDtypeOf(entry.fileDtype), fileDtype: entry.fileDtype });
  }
  return { tensors, metadata };
}

export interface WriteSafetensorsOptions {
  /** Write int32 tensors whose file dtype was int64 back as I64 (PyTorch index buffers expect it). */
  keepInt64?: boolean;
}

/** Encodes the header and lists the data chunks, in map order, with offsets packed back to back. */
export function encodeSafetensors(
  tensors: TensorMap,
  metadata: Record<string, string> = {},
  options: WriteSafetensorsOptions = {},
): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [field, value] of Object.entries(metadata)) {
      if (typeof value !== 'string')
        throw new SafetensorsError(`metadata "${field}" must be a string, received ${describe(value)}`);
    }
    header.__metadata__ = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, tensor] of tensors) {
    if (name === '__metadata__') throw new SafetensorsError('a tensor cannot be named "__metadata__" (reserved by the format)');
    const count = elementCount(tensor.shape);
    if (count !== tensor.data.length) {
      throw new SafetensorsError(
        `tensor "${name}": shape [${tensor.shape.join(', ')}] has ${count} elements but its data holds ${tensor.data.length}`,
      );
    }
    const dtype =
      tensor.dtype === 'float32'
        ? 'F32'
        : tensor.dtype === 'bool'
          ? 'BOOL'
          : options.keepInt64 && tensor.fileDtype === 'int64'
            ? 'I64'
            : 'I32';
    const bytes = hostBytes(tensor, dtype);
    header[name] = { dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  // Padding with spaces keeps the data 8-byte aligned for readers that map the file.
  const encoder = new TextEncoder();
  let headerBytes = encoder.encode(json);
  const padding = (8 - (headerBytes.length % 8)) % 8;
  if (padding) {
    json += ' '.repeat(padding);
    headerBytes = encoder.encode(json);
  }
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  return [prefix, headerBytes, ...chunks];
}

/** Writes a safetensors file atomically (temporary file in the same folder, then rename). */
export function writeSafetensors(
  path: string,
  tensors: TensorMap,
  metadata: Record<string, string> = {},
  options: WriteSafetensorsOptions = {},
): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata, options));
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

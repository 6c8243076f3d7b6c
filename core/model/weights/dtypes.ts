// Element decoding shared by the safetensors and .pth readers: every file dtype becomes one of the
// three host dtypes (float32, int32, bool) with explicit byte order, so both readers agree bit for bit.
import type { HostDtype, HostTensor } from './types.ts';

export const itemSize: Record<HostDtype, number> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export const hostDtypeOf = (fileDtype: HostDtype): HostTensor['dtype'] =>
  fileDtype === 'bool' ? 'bool' : fileDtype.startsWith('float') || fileDtype === 'bfloat16' ? 'float32' : 'int32';

const hostIsLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Number of elements of a shape; shapes are validated by the callers (non-negative safe integers). */
export const elementCount = (shape: readonly number[]): number => shape.reduce((product, size) => product * size, 1);

/** IEEE half -> float (exact: every half value is representable in float32). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** float -> IEEE half bits, round to nearest even (used by writers of test files). */
export function floatToHalf(value: number): number {
  const single = Math.fround(value);
  if (Number.isNaN(single)) return 0x7e00;
  const sign = single < 0 || Object.is(single, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(single);
  if (magnitude >= 65520) return sign | 0x7c00;
  if (magnitude < 2 ** -14) return sign | roundHalfEven(magnitude * 2 ** 24);
  let exponent = Math.floor(Math.log2(magnitude));
  if (2 ** exponent > magnitude) exponent--;
  if (2 ** (exponent + 1) <= magnitude) exponent++;
  // A mantissa that rounds up to 1024 carries into the exponent, which is the right half value.
  return sign | (((exponent + 15) << 10) + roundHalfEven((magnitude / 2 ** exponent - 1) * 1024));
}

function roundHalfEven(x: number): number {
  const rounded = Math.round(x);
  return rounded - x === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}

export class ElementRangeError extends Error {}

/**
 * Decodes `count` elements starting at byte `offset` of `bytes`, reading element i at
 * offset + index(i) * itemSize, where `index` maps output order to storage order (for strided views).
 * Integers that do not fit int32 throw ElementRangeError (the caller adds the tensor name).
 */
export function decodeElements(
  bytes: Uint8Array,
  offset: number,
  fileDtype: HostDtype,
  count: number,
  littleEndian: boolean,
  index?: (i: number) => number,
): Float32Array | Int32Array | Uint8Array {
  const size = itemSize[fileDtype];
  const contiguous = index === undefined;
  if (contiguous && littleEndian === hostIsLittleEndian) {
    // Fast path: one aligned copy, then reinterpret (typed arrays need aligned offsets).
    // An explicit copy: on a Node Buffer, slice() is a view whose .buffer is the whole file.
    const copy = new Uint8Array(count * size);
    copy.set(bytes.subarray(offset, offset + count * size));
    if (fileDtype === 'float32') return new Float32Array(copy.buffer, 0, count);
    if (fileDtype === 'int32') return new Int32Array(copy.buffer, 0, count);
    if (fileDtype === 'bool') return copy;
    if (fileDtype === 'uint8') return Int32Array.from(copy);
    if (fileDtype === 'int8') return Int32Array.from(new Int8Array(copy.buffer, 0, count));
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = contiguous ? (i: number) => offset + i * size : (i: number) => offset + index(i) * size;
  switch (fileDtype) {
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(at(i), littleEndian);
      return out;
    }
    case 'float64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(at(i), littleEndian);
      return out;
    }
    case 'float16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(at(i), littleEndian));
      return out;
    }
    case 'bfloat16': {
      const out = new Float32Array(count);
      const widen = new Uint32Array(1);
      const widened = new Float32Array(widen.buffer);
      for (let i = 0; i < count; i++) {
        widen[0] = view.getUint16(at(i), littleEndian) << 16;
        out[i] = widened[0];
      }
      return out;
    }
    case 'int64': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const value = view.getBigInt64(at(i), littleEndian);
        if (value > 2147483647n || value < -2147483648n) {
          throw new ElementRangeError(`int64 element ${i} is ${value}, which does not fit int32 (|value| < 2^31 is expected)`);
        }
        out[i] = Number(value);
      }
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(at(i), littleEndian);
      return out;
    }
    case 'int16': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(at(i), littleEndian);
      return out;
    }
    case 'int8': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt8(at(i));
      return out;
    }
    case 'uint8': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getUint8(at(i));
      return out;
    }
    case 'bool': {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getUint8(at(i)) ? 1 : 0;
      return out;
    }
  }
}

/** Bytes of a tensor's host data (what a writer stores), little-endian. */
export function hostBytes(tensor: HostTensor, as: 'F32' | 'I32' | 'I64' | 'BOOL'): Uint8Array {
  const { data } = tensor;
  if (as === 'I64') {
    const out = new BigInt64Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = BigInt(data[i]);
    return littleEndianBytes(new Uint8Array(out.buffer), 8);
  }
  return littleEndianBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), data.BYTES_PER_ELEMENT);
}

function littleEndianBytes(bytes: Uint8Array, size: number): Uint8Array {
  if (hostIsLittleEndian || size === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) for (let b = 0; b < size; b++) out[i + b] = bytes[i + size - 1 - b];
  return out;
}

/** True for objects that have the HostTensor shape (used when walking decoded pickles). */
export function isHostTensor(value: unknown): value is HostTensor {
  if (value === null || typeof value !== 'object') return false;
  const candidate = value as Partial<HostTensor>;
  return (
    Array.isArray(candidate.shape) &&
    typeof candidate.fileDtype === 'string' &&
    (candidate.data instanceof Float32Array || candidate.data instanceof Int32Array || candidate.data instanceof Uint8Array)
  );
}

// A bounds-checked zip reader for torch.save archives. fflate's unzipSync trusts the central
// directory (entry counts, sizes, offsets), so a damaged file can make it loop over garbage or
// allocate the declared size; here every count and range is checked against the real file first,
// stored entries are returned as zero-copy views, and only deflated ones go through fflate.
import { inflateSync } from 'fflate';
import * as zlib from 'node:zlib';
import { CheckpointFileError } from './read-bytes.ts';

interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  dataOffset: number;
  crc: number;
}

/** Deflate cannot expand by more than about 1032x; a larger declared size is a corrupt entry. */
const maxDeflateRatio = 1100;

/**
 * Total bytes the deflated entries of one archive may inflate to: real weights barely compress
 * (torch.save stores them uncompressed), so a file that would grow past 16x its size, beyond a
 * 256 MiB floor, is a zip bomb, not a checkpoint.
 */
export function defaultInflateBudget(fileBytes: number): number {
  return Math.max(256 * 1024 * 1024, 16 * fileBytes);
}

/** CRC-32 (zip's polynomial): node:zlib's native one when present (Node >= 20.15), else a table. */
let crcTable: Uint32Array | null = null;
export function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (native) return native(data) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export class ZipArchive {
  private readonly entries = new Map<string, ZipEntry>();
  private inflated = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly label: string,
    /** Bytes all deflated entries together may inflate to (see defaultInflateBudget). */
    private readonly inflateBudget = defaultInflateBudget(bytes.length),
  ) {
    this.parse();
  }

  get names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  size(name: string): number | undefined {
    return this.entries.get(name)?.size;
  }

  isDeflated(name: string): boolean {
    return this.entries.get(name)?.method === 8;
  }

  /** The entry's bytes, checked against its CRC-32; deflated entries count against the inflate budget first. */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) throw this.error(`entry "${name}" is missing`);
    const raw = this.bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
    let out = raw;
    if (entry.method !== 0) {
      if (this.inflated + entry.size > this.inflateBudget) {
        throw this.error(
          `deflated entry "${name}" declares ${entry.size} bytes; with ${this.inflated} bytes already inflated that passes ` +
            `the ${this.inflateBudget}-byte limit for a ${this.bytes.length}-byte file (a zip bomb, or a damaged size field)`,
        );
      }
      this.inflated += entry.size;
      try {
        out = inflateSync(raw, { out: new Uint8Array(entry.size) });
        if (out.length !== entry.size) throw new Error(`inflated to ${out.length} bytes, expected ${entry.size}`);
      } catch (error) {
        throw this.error(`entry "${name}" does not inflate (${(error as Error).message})`);
      }
    }
    const actual = crc32(out);
    if (actual !== entry.crc) {
      throw this.error(
        `entry "${name}" (${entry.size} bytes at offset ${entry.dataOffset}) fails its CRC-32 check: stored ` +
          `${hex32(entry.crc)}, computed ${hex32(actual)} (the file is damaged)`,
      );
    }
    return out;
  }

  private error(message: string): Error {
    return new CheckpointFileError(`${this.label}: ${message}`);
  }

  private parse(): void {
    const { bytes } = this;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const u16 = (at: number) => view.getUint16(at, true);
    const u32 = (at: number) => view.getUint32(at, true);
    const u64 = (at: number) => {
      const value = view.getBigUint64(at, true);
      return value > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(value);
    };
    const truncated = 'zip end-of-archive record not found (truncated file, or not a zip archive)';
    if (bytes.length < 22) throw this.error(truncated);

    let end = -1;
    for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 65535); at--) {
      if (u32(at) === 0x06054b50 && at + 22 + u16(at + 20) <= bytes.length) {
        end = at;
        break;
      }
    }
    if (end < 0) throw this.error(truncated);
    let count = u16(end + 10);
    let directorySize = u32(end + 12);
    let directoryOffset = u32(end + 16);
    let directoryLimit = end;
    if (end >= 20 && u32(end - 20) === 0x07064b50) {
      const zip64End = u64(end - 12);
      if (zip64End + 56 > end || u32(zip64End) !== 0x06064b50)
        throw this.error('zip64 end record is out of range (damaged file)');
      count = u64(zip64End + 32);
      directorySize = u64(zip64End + 40);
      directoryOffset = u64(zip64End + 48);
      directoryLimit = zip64End;
    }
    if (directoryOffset + directorySize > directoryLimit || count * 46 > directorySize) {
      throw this.error(
        `central directory (${count} entries, ${directorySize} bytes at ${directoryOffset}) does not fit in the ` +
          `${bytes.length}-byte file (truncated or damaged)`,
      );
    }

    let at = directoryOffset;
    const directoryEnd = directoryOffset + directorySize;
    for (let i = 0; i < count; i++) {
      if (at + 46 > directoryEnd || u32(at) !== 0x02014b50) throw this.error(`central directory entry ${i} is damaged`);
      const flags = u16(at + 8);
      const method = u16(at + 10);
      const crc = u32(at + 16);
      let compressedSize = u32(at + 20);
      let size = u32(at + 24);
      const nameLength = u16(at + 28);
      const extraLength = u16(at + 30);
      const commentLength = u16(at + 32);
      let localOffset = u32(at + 42);
      const next = at + 46 + nameLength + extraLength + commentLength;
      if (next > directoryEnd) throw this.error(`central directory entry ${i} runs past the directory`);
      const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
      // Zip64 extended information holds, in order, only the fields whose 32-bit value is saturated.
      for (let extra = at + 46 + nameLength; extra + 4 <= at + 46 + nameLength + extraLength;) {
        const id = u16(extra);
        const length = u16(extra + 2);
        if (id === 0x0001) {
          let field = extra + 4;
          const take = () => {
            if (field + 8 > extra + 4 + length) throw this.error(`zip64 field of "${name}" is too short`);
            const value = u64(field);
            field += 8;
            return value;
          };
          if (size === 0xffffffff) size = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (localOffset === 0xffffffff) localOffset = take();
        }
        extra += 4 + length;
      }
      if (localOffset + 30 > directoryOffset || u32(localOffset) !== 0x04034b50) {
        throw this.error(`local header of "${name}" is out of range or damaged`);
      }
      const dataOffset = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
      if (dataOffset + compressedSize > directoryOffset) {
        throw this.error(
          `data of "${name}" (${compressedSize} bytes at ${dataOffset}) runs past the entries area (truncated or damaged file)`,
        );
      }
      if (method === 0 && size !== compressedSize)
        throw this.error(`stored entry "${name}" declares ${size} bytes but holds ${compressedSize}`);
      if (flags & 1) throw this.error(`entry "${name}" is encrypted`);
      if (method !== 0 && method !== 8)
        throw this.error(`entry "${name}" uses zip compression method ${method}; only stored (0) and deflate (8) are supported`);
      if (method === 8 && size > Math.max(1024, compressedSize * maxDeflateRatio)) {
        throw this.error(
          `deflated entry "${name}" declares ${size} bytes from ${compressedSize}, more than deflate can produce (damaged file)`,
        );
      }
      this.entries.set(name, { name, method, compressedSize, size, dataOffset, crc });
      at = next;
    }
  }
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

// A seeded fuzz of the checkpoint readers over the parity fixtures: truncations, bit flips, safetensors
// header lies (dtypes named after prototype members, deep JSON, valid headers of 128, 384, 640... bytes),
// zip size/offset/CRC lies and a zip bomb, hostile pickles (1e5-deep nesting, cyclic and BigInt keys),
// configs in metadata asking for millions of blocks, and non-regular files. Every case must end, within
// a time and memory bound, in a loaded checkpoint or a typed error naming the file and where in it.
import { PARITY_DIR } from '../../shared-fixtures.ts';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../../core/model/config.ts';
import { loadCheckpoint, saveCheckpoint, type LoadedCheckpoint } from '../../../core/model/weights/checkpoint.ts';
import { CheckpointFileError } from '../../../core/model/weights/read-bytes.ts';
import { encodeSafetensors } from '../../../core/model/weights/safetensors.ts';
import type { TensorMap } from '../../../core/model/weights/types.ts';
import { buildPth, PickleEmitter, storageBytes, TensorSpec, type StorageSpec } from './pth-writer.ts';

const fixtures = PARITY_DIR;
const folder = mkdtempSync(join(tmpdir(), 'vswin-fuzz-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** mulberry32: a small seeded generator, so every run makes the same cases. */
function generator(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(items: T[]) => items[Math.floor(next() * items.length)] };
}
const random = generator(17);

interface Case {
  group: string;
  name: string;
  bytes: Uint8Array;
  /** Must load (a valid file written differently). */
  valid?: boolean;
  /** When it loads, its tensors must equal these (a bit flip in a checksummed file may not change weights). */
  sameAs?: LoadedCheckpoint;
}

const sources = ['adamw_step.safetensors', 'inflate_same_3d.safetensors', 'inflate_same_2d.pth', 'inflate_bicubic_2d.pth'];
const originals = new Map(sources.map((name) => [name, new Uint8Array(readFileSync(join(fixtures, name)))]));
const loadedOriginals = new Map(sources.map((name) => [name, loadCheckpoint(join(fixtures, name))]));
const cases: Case[] = [];

// Truncations and bit flips of real files.
for (let i = 0; i < 60; i++) {
  const source = random.pick(sources);
  const bytes = originals.get(source)!;
  const cut = random.int(bytes.length);
  cases.push({ group: 'truncation', name: `${source}-cut-${cut}`, bytes: bytes.slice(0, cut) });
}
for (let i = 0; i < 90; i++) {
  const source = random.pick(sources);
  const bytes = originals.get(source)!.slice();
  const flips = 1 + random.int(3);
  for (let f = 0; f < flips; f++) bytes[random.int(bytes.length)] ^= 1 << random.int(8);
  // safetensors has no checksum (a flipped weight loads); a zip entry's CRC-32 must catch it.
  cases.push({
    group: 'bit flip',
    name: `${source}-flip-${i}`,
    bytes,
    sameAs: source.endsWith('.pth') ? loadedOriginals.get(source) : undefined,
  });
}

// safetensors header lies, built from a small real file.
function safetensors(header: unknown, data: Uint8Array, padTo?: number): Uint8Array {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  if (padTo !== undefined) json = json.padEnd(padTo, ' ');
  const text = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}
const base = originals.get('adamw_step.safetensors')!;
const baseLength = Number(new DataView(base.buffer, base.byteOffset).getBigUint64(0, true));
const baseHeader = JSON.parse(new TextDecoder().decode(base.subarray(8, 8 + baseLength))) as Record<
  string,
  Record<string, unknown>
>;
const baseData = base.subarray(8 + baseLength);
const tensorNames = Object.keys(baseHeader).filter((key) => key !== '__metadata__');
const lies: [string, unknown][] = [
  ['dtype', 'constructor'],
  ['dtype', '__proto__'],
  ['dtype', 'toString'],
  ['dtype', 'hasOwnProperty'],
  ['dtype', 'F31'],
  ['dtype', 7],
  ['dtype', null],
  ['shape', [2 ** 40]],
  ['shape', [-1]],
  ['shape', [1.5]],
  ['shape', 'big'],
  ['shape', Array.from({ length: 5000 }, () => 1)],
  ['data_offsets', [10, 2]],
  ['data_offsets', [0, 2 ** 53]],
  ['data_offsets', [0]],
  ['data_offsets', [0, 1e400]],
];
for (let i = 0; i < 48; i++) {
  const [field, value] = lies[i % lies.length];
  const header = structuredClone(baseHeader);
  const target = random.pick(tensorNames);
  header[target][field] = value;
  cases.push({ group: 'safetensors lie', name: `st-${field}-${i}`, bytes: safetensors(header, baseData) });
}
for (const depth of [1e3, 1e5]) {
  cases.push({
    group: 'deep JSON',
    name: `st-deep-${depth}`,
    bytes: safetensors(`{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`, new Uint8Array(0)),
  });
  cases.push({
    group: 'deep JSON',
    name: `st-deep-metadata-${depth}`,
    bytes: safetensors(
      { __metadata__: { format: 'vswin', config: `${'['.repeat(depth)}${']'.repeat(depth)}` } },
      new Uint8Array(0),
    ),
  });
}
for (const length of [0n, 1n, 2n ** 64n - 1n, 2n ** 32n, 7n]) {
  const bytes = base.slice();
  new DataView(bytes.buffer).setBigUint64(0, length, true);
  cases.push({ group: 'safetensors lie', name: `st-length-${length}`, bytes });
}
cases.push({ group: 'safetensors lie', name: 'st-not-utf8', bytes: safetensors('{"a":"\xff"}', new Uint8Array(0)) });
{
  const bad = safetensors('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4));
  bad[15] = 0xff;
  cases.push({ group: 'safetensors lie', name: 'st-invalid-utf8', bytes: bad });
}
// Valid files whose header is 128, 384, 640... bytes (the first byte is 0x80, as in a legacy pickle).
for (const length of [128, 384, 640, 896, 1152, 128 + 256 * 9]) {
  const tensors: TensorMap = new Map([
    ['w', { shape: [2], data: Float32Array.of(1.5, -2), dtype: 'float32', fileDtype: 'float32' }],
  ]);
  const [, header, ...data] = encodeSafetensors(tensors);
  const text = new TextDecoder().decode(header).trimEnd();
  const body = new Uint8Array(data.reduce((sum, chunk) => sum + chunk.length, 0));
  data.reduce((at, chunk) => (body.set(chunk, at), at + chunk.length), 0);
  cases.push({ group: 'valid header length', name: `st-header-${length}`, bytes: safetensors(text, body, length), valid: true });
}

// Configs in a vswin file's metadata asking for absurd models, next to a sane one.
const sane = {
  backbone: {
    patch_size: [2, 4, 4],
    embed_dim: 16,
    depths: [2, 2],
    num_heads: [1, 2],
    window_size: [2, 4, 4],
  },
  num_classes: 3,
};
const absurd: [string, (config: typeof sane) => void][] = [
  ['depths 2e6', (c) => (c.backbone.depths = [2000000])],
  ['100 stages', (c) => ((c.backbone.depths = new Array(100).fill(1)), (c.backbone.num_heads = new Array(100).fill(1)))],
  ['embed 1e9', (c) => (c.backbone.embed_dim = 1e9)],
  ['window 1e6', (c) => (c.backbone.window_size = [1e6, 1e6, 1e6])],
  ['classes 1e12', (c) => (c.num_classes = 1e12)],
  ['heads 0', (c) => (c.backbone.num_heads = [0, 2])],
  ['patch -1', (c) => (c.backbone.patch_size = [-1, 4, 4])],
];
function vswinFile(config: unknown): Uint8Array {
  const path = join(folder, `config-${random.int(1e9)}.safetensors`);
  const tensors: TensorMap = new Map([['w', { shape: [1], data: Float32Array.of(1), dtype: 'float32', fileDtype: 'float32' }]]);
  saveCheckpoint(path, tensors, { config });
  return new Uint8Array(readFileSync(path));
}
cases.push({ group: 'config', name: 'config-sane', bytes: vswinFile(sane), valid: true });
for (const [name, change] of absurd) {
  const config = structuredClone(sane);
  change(config);
  cases.push({ group: 'config', name: `config-${name}`, bytes: vswinFile(config) });
}

// Zip lies on a real torch.save file: each field of a central directory entry or the end record.
const zipBase = originals.get('inflate_same_2d.pth')!;
function centralEntries(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const found: number[] = [];
  for (let at = bytes.length - 22; at > 0; at--) if (view.getUint32(at, true) === 0x02014b50) found.push(at);
  return found;
}
const entryOffsets = centralEntries(zipBase);
const entryFields: [string, number, number][] = [
  ['method', 10, 2],
  ['crc', 16, 4],
  ['compressed size', 20, 4],
  ['size', 24, 4],
  ['name length', 28, 2],
  ['extra length', 30, 2],
  ['local offset', 42, 4],
];
for (let i = 0; i < 56; i++) {
  const bytes = zipBase.slice();
  const view = new DataView(bytes.buffer);
  const [field, offset, width] = entryFields[i % entryFields.length];
  const at = random.pick(entryOffsets) + offset;
  const value = random.pick([0, 1, 8, 12, 0xffff, 0xffffffff, 0x7fffffff, random.int(2 ** 31)]);
  if (width === 2) view.setUint16(at, value & 0xffff, true);
  else view.setUint32(at, value >>> 0, true);
  cases.push({ group: 'zip lie', name: `zip-${field}-${i}`, bytes, sameAs: loadedOriginals.get('inflate_same_2d.pth') });
}
{
  // A zip bomb: 1 MB of deflated data whose entry (and the pickle) declare 1 GiB of float32.
  const elements = 2 ** 28;
  const noise = new Uint8Array(1 << 20).map(() => random.int(256));
  const storage: StorageSpec = { key: '0', dtype: 'float32', bytes: noise, elements };
  const bytes = buildPth({ w: new TensorSpec(storage, [elements]) }, { deflate: true });
  const view = new DataView(bytes.buffer);
  for (const at of centralEntries(bytes)) {
    const nameLength = view.getUint16(at + 28, true);
    if (new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength)) === 'archive/data/0') {
      view.setUint32(at + 24, elements * 4, true);
      view.setUint32(view.getUint32(at + 42, true) + 22, elements * 4, true); // the local header's copy
    }
  }
  cases.push({ group: 'zip bomb', name: 'zip-bomb', bytes });
}

// Hostile pickles.
function repeat(emitter: PickleEmitter, opcode: number, times: number): PickleEmitter {
  for (let i = 0; i < times; i++) emitter.op(opcode);
  return emitter;
}
function pickleFile(emit: (emitter: PickleEmitter) => void): Uint8Array {
  const emitter = new PickleEmitter().op(0x80, 2);
  emit(emitter);
  emitter.op(0x2e);
  return buildPth(null, {
    pickle: emitter.bytes(),
    storages: [{ key: '0', dtype: 'float32', bytes: storageBytes([1], 'float32'), elements: 1 }],
  });
}
for (const depth of [1e3, 1e5]) {
  cases.push({
    group: 'deep pickle',
    name: `tuple1-${depth}`,
    bytes: pickleFile((e) => (e.op(0x4e), repeat(e, 0x85, depth))),
  });
  cases.push({
    group: 'deep pickle',
    name: `mark-list-${depth}`,
    bytes: pickleFile((e) => (repeat(e, 0x28, depth), e.op(0x4e), repeat(e, 0x6c, depth))),
  });
  cases.push({
    group: 'deep pickle',
    name: `deep-key-${depth}`,
    bytes: pickleFile((e) => (e.op(0x7d, 0x4e), repeat(e, 0x85, depth), e.op(0x4b, 1, 0x73))),
  });
}
cases.push({
  group: 'hostile pickle',
  name: 'cyclic-key',
  // {}, [] memoised, the list appended to itself, then used as a key.
  bytes: pickleFile((e) => e.op(0x7d, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x4b, 1, 0x73)),
});
cases.push({
  group: 'hostile pickle',
  name: 'bigint-key',
  bytes: pickleFile((e) => e.op(0x7d, 0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x4b, 1, 0x73)),
});
cases.push({
  group: 'hostile pickle',
  name: 'bigint-tuple-key',
  bytes: pickleFile((e) => e.op(0x7d, 0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x85, 0x4b, 1, 0x73)),
});
for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty'])
  cases.push({ group: 'hostile pickle', name: `key-${key}`, bytes: pickleFile((e) => e.op(0x7d).text(key).op(0x4b, 1, 0x73)) });

const typedMessage = (path: string) =>
  new RegExp(
    `^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*(byte|offset|entry|tensor|storage|header|data\\.pkl|metadata|field|bytes|key|character|CRC|pickle|config|archive|file)`,
    's',
  );

describe('checkpoint reader fuzz', () => {
  it(`ends every one of ${cases.length} generated cases in a checkpoint or a typed error naming the file and where`, () => {
    expect(cases.length).toBeGreaterThan(250);
    const outcomes: Record<string, { loaded: number; refused: number }> = {};
    let slowest = 0;
    for (const [index, testCase] of cases.entries()) {
      const path = join(folder, `${index}-${testCase.name.replace(/[^\w.-]/g, '_')}`);
      writeFileSync(path, testCase.bytes);
      const started = performance.now();
      let loaded: LoadedCheckpoint | null = null;
      let failure: unknown = null;
      try {
        loaded = loadCheckpoint(path);
        // A config stored in the file is validated before anything is built from it.
        if (loaded.metadata.config !== undefined) parseModelConfig(loaded.metadata.config, `${path}: config stored in the file`);
      } catch (error) {
        failure = error;
      }
      const seconds = (performance.now() - started) / 1000;
      slowest = Math.max(slowest, seconds);
      const label = `${testCase.group} / ${testCase.name}: ${failure instanceof Error ? failure.message.slice(0, 300) : 'loaded'}`;
      expect(seconds, label).toBeLessThan(5);
      expect(process.memoryUsage().rss, label).toBeLessThan(3 * 1024 ** 3);
      if (testCase.valid) expect(failure, label).toBeNull();
      if (failure !== null) {
        const isConfigError = testCase.group === 'config' && failure instanceof Error && failure.message.startsWith('Invalid ');
        if (!isConfigError) expect(failure, label).toBeInstanceOf(CheckpointFileError);
        expect((failure as Error).message, label).toMatch(
          isConfigError ? new RegExp(path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : typedMessage(path),
        );
        expect((failure as Error).message, label).not.toMatch(
          /Maximum call stack|circular structure|BigInt|NaN bytes|is not a function/,
        );
      } else if (testCase.sameAs) {
        expect([...loaded!.stateDict.keys()], label).toEqual([...testCase.sameAs.stateDict.keys()]);
        for (const [name, tensor] of testCase.sameAs.stateDict)
          expect(loaded!.stateDict.get(name)!.data, `${label} ${name}`).toEqual(tensor.data);
      }
      if (process.env.FUZZ_VERBOSE) console.log(label);
      const tally = (outcomes[testCase.group] ??= { loaded: 0, refused: 0 });
      if (failure === null) tally.loaded += 1;
      else tally.refused += 1;
    }
    console.log(
      `fuzz: ${cases.length} cases, slowest ${slowest.toFixed(3)} s, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
    );
    console.table(outcomes);
    // Every hostile group is refused where it must be: no prototype dtype, deep value or absurd config loads.
    for (const group of ['deep JSON', 'deep pickle', 'zip bomb']) expect(outcomes[group].loaded, group).toBe(0);
    expect(outcomes['valid header length']).toEqual({ loaded: 6, refused: 0 });
    expect(outcomes.config).toEqual({ loaded: 1, refused: absurd.length });
  }, 60_000);

  it('refuses a FIFO and a directory at once instead of waiting on them', () => {
    const fifo = join(folder, 'weights.pth');
    execFileSync('mkfifo', [fifo]);
    const started = performance.now();
    expect(() => loadCheckpoint(fifo)).toThrow(
      new RegExp(`${fifo}: is a FIFO \\(named pipe\\); a checkpoint must be a regular file`),
    );
    const directory = join(folder, 'dir.safetensors');
    mkdirSync(directory);
    expect(() => loadCheckpoint(directory)).toThrow(/dir\.safetensors: is a directory; a checkpoint must be a regular file/);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

// A small builder of static-shape ONNX graphs (default domain, one opset). Every value carries its
// shape, computed here for the operators the exporter uses, so a wrong reshape or broadcast is an
// error at export time naming the node, not a failure inside a runtime later.
import { endianness } from 'node:os';
import {
  AttributeType,
  DataType,
  type AttributeMessage,
  type DataTypeCode,
  type ModelMessage,
  type NodeMessage,
  type TensorMessage,
  type ValueInfoMessage,
} from './onnx-proto.ts';

export interface Value {
  name: string;
  shape: number[];
  type: DataTypeCode;
}

export type Attribute =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string };

export const int = (value: number): Attribute => ({ kind: 'int', value });
export const ints = (value: number[]): Attribute => ({ kind: 'ints', value });
export const float = (value: number): Attribute => ({ kind: 'float', value });

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const show = (shape: readonly number[]) => `[${shape.join(', ')}]`;

function bytesOf(array: Float32Array | Int32Array | BigInt64Array | Uint8Array): Uint8Array {
  // raw_data is little-endian by definition; typed arrays use the host's order.
  if (endianness() !== 'LE') throw new Error('ONNX export needs a little-endian host (raw_data is little-endian)');
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function attributeMessage(name: string, attribute: Attribute): AttributeMessage {
  switch (attribute.kind) {
    case 'int':
      return { name, type: AttributeType.INT, i: attribute.value };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: attribute.value };
    case 'float':
      return { name, type: AttributeType.FLOAT, f: attribute.value };
    case 'string':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(attribute.value) };
    default: {
      const unreachable: never = attribute;
      throw new Error(`unknown attribute ${JSON.stringify(unreachable)}`);
    }
  }
}

/** Numpy-style broadcast of two static shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[], where: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`${where}: shapes ${show(a)} and ${show(b)} do not broadcast`);
    out.push(Math.max(x, y));
  }
  return out;
}

export class OnnxGraph {
  private readonly nodes: NodeMessage[] = [];
  private readonly initializers: TensorMessage[] = [];
  private readonly inputs: ValueInfoMessage[] = [];
  private readonly outputs: ValueInfoMessage[] = [];
  private readonly constants = new Map<string, Value>();
  private readonly names = new Set<string>();
  private counter = 0;

  private fresh(hint: string): string {
    let name = hint;
    while (this.names.has(name)) name = `${hint}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  input(name: string, shape: number[]): Value {
    const value: Value = { name: this.fresh(name), shape, type: DataType.FLOAT };
    this.inputs.push(valueInfo(value));
    return value;
  }

  output(value: Value, name: string): void {
    const renamed = this.op('Identity', [value], value.shape, {}, name);
    this.outputs.push(valueInfo(renamed));
  }

  /** A float32 weight under its own name (parameter keys keep their official names). */
  weight(name: string, data: Float32Array, shape: number[]): Value {
    if (data.length !== size(shape)) throw new Error(`initializer "${name}": ${data.length} values for shape ${show(shape)}`);
    const value: Value = { name: this.fresh(name), shape, type: DataType.FLOAT };
    this.initializers.push({
      name: value.name,
      dims: shape,
      data_type: DataType.FLOAT,
      raw_data: bytesOf(Float32Array.from(data)),
    });
    return value;
  }

  /** An int32 / int64 constant; identical constants are stored once. */
  integers(
    values: ArrayLike<number>,
    shape: number[],
    type: typeof DataType.INT32 | typeof DataType.INT64 = DataType.INT64,
  ): Value {
    const key = `${type}|${shape.join(',')}|${Array.from(values).join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const data =
      type === DataType.INT64 ? BigInt64Array.from(Array.from(values), (v) => BigInt(v)) : Int32Array.from(Array.from(values));
    const value: Value = { name: this.fresh(`const_i${type === DataType.INT64 ? 64 : 32}_${this.constants.size}`), shape, type };
    this.initializers.push({ name: value.name, dims: shape, data_type: type, raw_data: bytesOf(data) });
    this.constants.set(key, value);
    return value;
  }

  /** A float32 scalar constant (stored once per value). */
  scalar(value: number): Value {
    const key = `f|${value}`;
    const known = this.constants.get(key);
    if (known) return known;
    const result: Value = { name: this.fresh(`const_f_${this.constants.size}`), shape: [], type: DataType.FLOAT };
    this.initializers.push({ name: result.name, dims: [], data_type: DataType.FLOAT, raw_data: bytesOf(Float32Array.of(value)) });
    this.constants.set(key, result);
    return result;
  }

  /** Appends a node with one output whose static shape the caller states. */
  op(
    opType: string,
    inputs: Value[],
    shape: number[],
    attributes: Record<string, Attribute> = {},
    name?: string,
    type: DataTypeCode = DataType.FLOAT,
  ): Value {
    const output: Value = { name: this.fresh(name ?? `${opType}_${this.nodes.length}`), shape, type };
    this.nodes.push({
      name: `n${this.nodes.length}_${opType}`,
      op_type: opType,
      input: inputs.map((v) => v.name),
      output: [output.name],
      attribute: Object.entries(attributes).map(([key, attribute]) => attributeMessage(key, attribute)),
    });
    return output;
  }

  // Shape-checked helpers for the operators the exporter uses.

  reshape(x: Value, shape: number[]): Value {
    if (size(shape) !== size(x.shape)) throw new Error(`Reshape of ${x.name}: ${show(x.shape)} cannot become ${show(shape)}`);
    if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) return x;
    return this.op('Reshape', [x, this.integers(shape, [shape.length])], shape);
  }

  transpose(x: Value, perm: number[]): Value {
    if (perm.length !== x.shape.length || [...perm].sort().some((p, i) => p !== i))
      throw new Error(`Transpose of ${x.name} ${show(x.shape)}: permutation ${show(perm)} is not a permutation of its axes`);
    return this.op(
      'Transpose',
      [x],
      perm.map((p) => x.shape[p]),
      { perm: ints(perm) },
    );
  }

  binary(opType: 'Add' | 'Mul' | 'Div' | 'Sub', a: Value, b: Value): Value {
    return this.op(opType, [a, b], broadcastShapes(a.shape, b.shape, `${opType}(${a.name}, ${b.name})`));
  }

  matMul(a: Value, b: Value): Value {
    const [m, k] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (a.shape.length < 2 || b.shape.length < 2 || k !== k2)
      throw new Error(`MatMul(${a.name} ${show(a.shape)}, ${b.name} ${show(b.shape)}): inner dimensions differ`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), `MatMul(${a.name}, ${b.name})`);
    return this.op('MatMul', [a, b], [...batch, m, n]);
  }

  /** x[..., begin:end, ...] along one axis. */
  slice(x: Value, axis: number, begin: number, end: number): Value {
    const shape = [...x.shape];
    if (begin < 0 || end > shape[axis] || begin >= end)
      throw new Error(`Slice of ${x.name} ${show(x.shape)} on axis ${axis}: [${begin}, ${end}) is out of range`);
    if (begin === 0 && end === shape[axis]) return x;
    shape[axis] = end - begin;
    return this.op('Slice', [x, this.integers([begin], [1]), this.integers([end], [1]), this.integers([axis], [1])], shape);
  }

  concat(values: Value[], axis: number): Value {
    const shape = [...values[0].shape];
    shape[axis] = values.reduce((total, v) => total + v.shape[axis], 0);
    return this.op('Concat', values, shape, { axis: int(axis) });
  }

  /** Zero padding at the end of each axis. */
  padEnd(x: Value, amounts: number[]): Value {
    if (amounts.every((a) => a === 0)) return x;
    const pads = [...x.shape.map(() => 0), ...amounts];
    return this.op(
      'Pad',
      [x, this.integers(pads, [pads.length])],
      x.shape.map((d, i) => d + amounts[i]),
      { mode: { kind: 'string', value: 'constant' } },
    );
  }

  toModel(options: {
    name: string;
    opset: number;
    irVersion: number;
    producer: string;
    version: string;
    doc: string;
    metadata: Record<string, string>;
  }): ModelMessage {
    if (this.outputs.length === 0) throw new Error('the ONNX graph has no output');
    return {
      ir_version: options.irVersion,
      opset_import: [{ domain: '', version: options.opset }],
      producer_name: options.producer,
      producer_version: options.version,
      doc_string: options.doc,
      graph: {
        name: options.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
      metadata_props: Object.entries(options.metadata).map(([key, value]) => ({ key, value })),
    };
  }

  get nodeCount(): number {
    return this.nodes.length;
  }
}

function valueInfo(value: Value): ValueInfoMessage {
  return {
    name: value.name,
    type: { tensor_type: { elem_type: value.type, shape: { dim: value.shape.map((d) => ({ dim_value: d })) } } },
  };
}

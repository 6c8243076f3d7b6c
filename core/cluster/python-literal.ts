// Python source for config values: mmcv/mmengine configs are Python files, and some transforms
// reject lists where the official configs hold tuples, so tuples are written as tuples.

export class PythonTuple {
  constructor(readonly items: readonly unknown[]) {}
}

export const tuple = (...items: unknown[]): PythonTuple => new PythonTuple(items);

/** A raw Python expression written as is (e.g. a variable of the base config). */
export class PythonCode {
  constructor(readonly code: string) {}
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Formats a value as a Python literal, dicts as `dict(key=value)` like the official configs. */
export function toPython(value: unknown, indent = 0): string {
  const pad = ' '.repeat(indent + 4);
  if (value === null || value === undefined) return 'None';
  if (value instanceof PythonCode) return value.code;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return "float('nan')";
    if (!Number.isFinite(value)) return value > 0 ? "float('inf')" : "-float('inf')";
    return String(value);
  }
  if (typeof value === 'string') return quote(value);
  if (value instanceof PythonTuple) {
    const items = value.items.map((item) => toPython(item, indent));
    return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
  }
  if (Array.isArray(value)) {
    const items = value.map((item) => toPython(item, indent + 4));
    const flat = `[${items.join(', ')}]`;
    return flat.length <= 80 && !flat.includes('\n')
      ? flat
      : `[\n${items.map((item) => `${pad}${item}`).join(',\n')},\n${' '.repeat(indent)}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, item]) => item !== undefined);
    for (const [key] of entries) if (!identifier.test(key)) throw new Error(`config key "${key}" is not a Python identifier`);
    const parts = entries.map(([key, item]) => `${key}=${toPython(item, indent + 4)}`);
    const flat = `dict(${parts.join(', ')})`;
    return flat.length <= 80 && !flat.includes('\n') ? flat : `dict(\n${parts.map((part) => `${pad}${part}`).join(',\n')})`;
  }
  throw new Error(`cannot write ${typeof value} as a Python literal`);
}

/** A single-quoted Python string literal. */
export function quote(text: string): string {
  let out = "'";
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === '\\') out += '\\\\';
    else if (char === "'") out += "\\'";
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += char;
  }
  return `${out}'`;
}

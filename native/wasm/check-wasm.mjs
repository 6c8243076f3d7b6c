// Verifies a kernel module is safe to run inside TensorFlow.js's memory: it imports exactly one
// memory, has no data segments, and its code never reads or writes a global (the linker always
// defines __stack_pointer; code touching it would put stack frames into the host's heap).
// The code check needs wabt's wasm-objdump (apt-get install wabt).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const path = process.argv[2];
const bytes = readFileSync(path);
const module = new WebAssembly.Module(bytes);
const imports = WebAssembly.Module.imports(module);
const problems = [];
if (imports.length !== 1 || imports[0].kind !== 'memory')
  problems.push(`imports ${JSON.stringify(imports)}; expected only a memory`);

function readUnsigned(offset) {
  let result = 0;
  let shift = 0;
  let byte;
  do {
    byte = bytes[offset++];
    result |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  return [result, offset];
}

let offset = 8;
while (offset < bytes.length) {
  const id = bytes[offset];
  const [size, start] = readUnsigned(offset + 1);
  if (id === 11) problems.push('has a data section');
  offset = start + size;
}
const disassembly = spawnSync('wasm-objdump', ['-d', path], { encoding: 'utf8', maxBuffer: 1 << 28 });
if (disassembly.status !== 0) problems.push('cannot disassemble it (install wabt for wasm-objdump)');
else if (/global\.(get|set)/.test(disassembly.stdout)) problems.push('its code uses a global (shadow stack)');
if (problems.length > 0) {
  console.error(`${path}: not safe to run in the host's memory: ${problems.join('; ')}`);
  process.exit(1);
}
console.log(
  `${path}: ${bytes.length} bytes, exports ${WebAssembly.Module.exports(module)
    .map((entry) => entry.name)
    .join(', ')}`,
);

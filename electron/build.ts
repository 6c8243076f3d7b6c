// Compiles the preload to the CommonJS file a sandboxed preload must be (one file, only `electron`).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transformWithEsbuild } from 'vite';

export async function buildPreload(): Promise<string> {
  const source = fileURLToPath(new URL('./preload/preload.ts', import.meta.url));
  // dist/ at the project root: ignored by git and by the linter (generated code).
  const outDir = fileURLToPath(new URL('../dist/electron/', import.meta.url));
  const out = `${outDir}preload.cjs`;
  const result = await transformWithEsbuild(readFileSync(source, 'utf8'), source, {
    format: 'cjs',
    loader: 'ts',
    target: 'es2022',
  });
  mkdirSync(outDir, { recursive: true });
  writeFileSync(`${out}.partial`, result.code);
  const { renameSync } = await import('node:fs');
  renameSync(`${out}.partial`, out);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildPreload().then((out) => process.stdout.write(`${out}\n`));
}

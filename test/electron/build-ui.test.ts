// The first `npm start` builds the UI with a progress line: the plugin's phases and counts on a tiny
// real vite build (the full UI takes a minute or more on this machine).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'vite';
import { afterAll, describe, expect, it } from 'vitest';
import { describeProgress, progressPlugin, type UiBuildProgress } from '../../electron/build-ui.ts';

const dir = mkdtempSync(join(tmpdir(), 'vswin-build-ui-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('UI build progress', () => {
  it('reports compiling, bundling, writing and done, with the modules it compiled', async () => {
    writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="./main.ts"></script>');
    writeFileSync(join(dir, 'main.ts'), "import { double } from './double.ts';\ndocument.title = String(double(21));\n");
    writeFileSync(join(dir, 'double.ts'), 'export const double = (x: number): number => x * 2;\n');
    const phases: UiBuildProgress[] = [];
    const { plugin, snapshot } = progressPlugin((progress) => phases.push(progress));
    await build({ root: dir, configFile: false, logLevel: 'silent', plugins: [plugin], build: { outDir: join(dir, 'dist') } });

    expect(phases.map((p) => p.phase)).toEqual(['transforming', 'bundling', 'writing', 'done']);
    // index.html, main.ts and double.ts pass the transform hook (plus vite's own preload helper).
    expect(phases[1].modules).toBeGreaterThanOrEqual(3);
    expect(phases[3].chunks).toBeGreaterThanOrEqual(1);
    expect(snapshot().seconds).toBeGreaterThanOrEqual(phases[0].seconds);
    expect(readFileSync(join(dir, 'dist', 'index.html'), 'utf8')).toContain('<script');

    expect(describeProgress({ phase: 'transforming', modules: 12, chunks: 0, seconds: 7.4 })).toBe(
      'Building the UI (first start, usually 1-2 min): 12 modules compiled, 7 s',
    );
    expect(describeProgress(phases[3])).toMatch(/^Built the UI in \d+ s$/);
  });
});

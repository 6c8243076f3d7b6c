// Builds the renderer for `npm start` with a progress line, so the first start (a minute or two on a
// small machine) does not look stuck. Type-checking the renderer is left to `npm test` (npm run
// build:ui); the bundle is the same.
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'vite';

export interface UiBuildProgress {
  phase: 'transforming' | 'bundling' | 'writing' | 'done';
  modules: number;
  chunks: number;
  seconds: number;
}

/**
 * A vite plugin that counts the build's work. `snapshot()` reads it at any time (one big module, the
 * plotting library, compiles for most of a minute without any hook firing); `onPhase` hears each phase change.
 */
export function progressPlugin(onPhase: (progress: UiBuildProgress) => void): {
  plugin: Plugin;
  snapshot: () => UiBuildProgress;
} {
  const started = Date.now();
  const state = { phase: 'transforming' as UiBuildProgress['phase'], modules: 0, chunks: 0 };
  const snapshot = (): UiBuildProgress => ({ ...state, seconds: (Date.now() - started) / 1000 });
  const enter = (phase: UiBuildProgress['phase']) => {
    state.phase = phase;
    onPhase(snapshot());
  };
  const plugin: Plugin = {
    name: 'vswin-build-progress',
    apply: 'build',
    buildStart: () => enter('transforming'),
    transform() {
      state.modules += 1;
      return null;
    },
    buildEnd: () => enter('bundling'),
    renderChunk() {
      state.chunks += 1;
      return null;
    },
    generateBundle: () => enter('writing'),
    closeBundle: () => enter('done'),
  };
  return { plugin, snapshot };
}

export function describeProgress(progress: UiBuildProgress): string {
  const seconds = `${Math.round(progress.seconds)} s`;
  switch (progress.phase) {
    case 'transforming':
      return `Building the UI (first start, usually 1-2 min): ${progress.modules} modules compiled, ${seconds}`;
    case 'bundling':
      return `Building the UI (first start): bundling and minifying ${progress.modules} modules, ${seconds}`;
    case 'writing':
      return `Building the UI (first start): writing ${progress.chunks} files, ${seconds}`;
    case 'done':
      return `Built the UI in ${seconds}`;
    default: {
      const never: never = progress.phase;
      throw new Error(`unknown build phase ${String(never)}`);
    }
  }
}

/** Builds renderer/ into renderer/dist (or `outDir`), writing a progress line (rewritten in place on a terminal). */
export async function buildUi(out: NodeJS.WriteStream = process.stderr, outDir?: string): Promise<void> {
  const tty = Boolean(out.isTTY);
  const write = (progress: UiBuildProgress) => {
    const line = describeProgress(progress);
    out.write(tty ? `\r\x1b[2K${line}${progress.phase === 'done' ? '\n' : ''}` : `${line}\n`);
  };
  const { plugin, snapshot } = progressPlugin(write);
  // Every second on a terminal; every 5 s into a log file.
  const ticker = setInterval(() => write(snapshot()), tty ? 1000 : 5000);
  try {
    await build({
      configFile: fileURLToPath(new URL('../renderer/vite.config.ts', import.meta.url)),
      logLevel: 'warn',
      ...(outDir ? { build: { outDir, emptyOutDir: true } } : {}),
      plugins: [plugin],
    });
  } finally {
    clearInterval(ticker);
  }
}

// Builds the renderer into renderer/dist, which `vswin serve` and the Electron shell serve.
// JSX goes through esbuild directly: @vitejs/plugin-react does not install next to vite 7 here.
import { defineConfig } from 'vite';

// A URL pathname, not node:url: the renderer folder's lint rule keeps Node modules out of it.
const root = decodeURIComponent(new URL('.', import.meta.url).pathname);

export default defineConfig({
  root,
  base: './',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 6000,
    rollupOptions: { input: { main: `${root}index.html`, bench: `${root}bench.html` } },
  },
});

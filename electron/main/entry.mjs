// Electron loads this plain-JS entry; it registers tsx so the TypeScript main process runs as written.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');

// Entry of a compute worker thread: workers do not inherit tsx's loader, so register it here.
import { register } from 'tsx/esm/api';

register();
await import('./compute-worker.ts');

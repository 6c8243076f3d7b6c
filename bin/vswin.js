#!/usr/bin/env node
// Entry point of the `vswin` command: runs the TypeScript CLI through tsx (no build step needed).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../core/host/cli/main.ts');
await main(process.argv);

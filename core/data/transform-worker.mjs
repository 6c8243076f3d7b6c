// Worker thread running the spatial pipeline off the loader's thread. Plain JavaScript so that it
// starts under any runner; it registers tsx itself to load the TypeScript modules.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { applyPipeline } = await import('./pipeline.ts');
const { Random } = await import('../engine/random.ts');

parentPort.on('message', (message) => {
  const { id, spec, width, height, frameCount, pixels, randomState } = message;
  try {
    const frameBytes = width * height * 3;
    const frames = Array.from({ length: frameCount }, (_, k) => pixels.subarray(k * frameBytes, (k + 1) * frameBytes));
    const random = new Random(0).setState(randomState);
    const { data } = applyPipeline(spec, { width, height, frames }, random);
    parentPort.postMessage({ id, data }, [data.buffer]);
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
parentPort.postMessage({ ready: true });

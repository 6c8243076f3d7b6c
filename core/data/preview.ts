// Contact sheet of what the model sees: one row per view, one column per frame, de-normalised.
import sharp from 'sharp';
import { writeFileAtomic } from './files.ts';
import { denormalizeToBytes, imagenetMean, imagenetStd } from './transforms.ts';

const gap = 2;

/** data is one sample [views, 3, T, H, W]; returns RGB bytes of the sheet and its size. */
export function contactSheet(
  data: Float32Array,
  shape: readonly number[],
  mean: readonly number[] = imagenetMean,
  std: readonly number[] = imagenetStd,
): { pixels: Uint8Array; width: number; height: number } {
  const [views, channels, frames, height, width] = shape;
  if (channels !== 3) throw new Error(`contact sheet: expected 3 channels, received shape [${shape.join(', ')}]`);
  const sheetWidth = frames * width + (frames + 1) * gap;
  const sheetHeight = views * height + (views + 1) * gap;
  const pixels = new Uint8Array(sheetWidth * sheetHeight * 3).fill(32);
  const plane = width * height;
  for (let view = 0; view < views; view++) {
    for (let t = 0; t < frames; t++) {
      const left = gap + t * (width + gap);
      const top = gap + view * (height + gap);
      for (let c = 0; c < 3; c++) {
        const base = ((view * 3 + c) * frames + t) * plane;
        for (let y = 0; y < height; y++) {
          for (let x = 0; x < width; x++) {
            pixels[((top + y) * sheetWidth + left + x) * 3 + c] = denormalizeToBytes(data[base + y * width + x], c, mean, std);
          }
        }
      }
    }
  }
  return { pixels, width: sheetWidth, height: sheetHeight };
}

export async function writeContactSheet(
  path: string,
  data: Float32Array,
  shape: readonly number[],
  mean?: readonly number[],
  std?: readonly number[],
): Promise<{ width: number; height: number }> {
  const sheet = contactSheet(data, shape, mean, std);
  const png = await sharp(sheet.pixels, { raw: { width: sheet.width, height: sheet.height, channels: 3 } })
    .png()
    .toBuffer();
  await writeFileAtomic(path, png);
  return { width: sheet.width, height: sheet.height };
}

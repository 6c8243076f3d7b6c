// CLI subcommands of the data area: synth, scan, check, sample, preview, convert.
import { Option, type Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { Random } from '../../engine/random.ts';
import {
  createMlToEntries,
  entriesToCreateMl,
  formatAnnotationLines,
  formatCreateMlCsv,
  formatCreateMlJson,
  formatLabelMap,
  parseCreateMlCsv,
  parseCreateMlJson,
  readLabelMap,
} from '../../data/annotations.ts';
import { checkAnnotationFile, loadAnnotations } from '../../data/dataset.ts';
import { describeTools } from '../../data/decode.ts';
import { writeFileAtomic } from '../../data/files.ts';
import { createLoader } from '../../data/loader.ts';
import { presetPipeline, type PipelineMode, type PresetFamily, type PresetOptions } from '../../data/pipeline.ts';
import { ssv2RandAugment } from '../../data/randaugment.ts';
import { writeContactSheet } from '../../data/preview.ts';
import { sampleFrames, type OutOfBoundOption } from '../../data/sampling.ts';
import { scanDataset, splitDataset, writeScanOutputs } from '../../data/scan.ts';
import { generateSyntheticDataset, type VideoCodec } from '../../data/synth.ts';
import { floatOption, intOption } from './shared.ts';

const say = (line: string) => process.stderr.write(`${line}\n`);

function presetOptionsFrom(options: Record<string, unknown>): PresetOptions {
  const result: PresetOptions = {};
  for (const key of ['clipLen', 'frameInterval', 'numClips', 'shortSide', 'cropSize'] as const) {
    if (options[key] !== undefined) result[key] = options[key] as number;
  }
  if (typeof options.randAugment === 'string') result.randAugment = parseRandAugment(options.randAugment);
  return result;
}

/** --rand-augment N,M (imgaug's n and m; fill 128, imgaug's flip 0.5) or "off". */
function parseRandAugment(text: string): PresetOptions['randAugment'] {
  if (text.trim().toLowerCase() === 'off') return null;
  const match = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(text);
  if (!match) throw new Error(`--rand-augment: expected N,M (e.g. 4,7) or off, received "${text}"`);
  return { ...ssv2RandAugment, n: Number(match[1]), m: Number(match[2]) };
}

export function registerDataCommands(program: Command): void {
  const data = program
    .command('data')
    .description('datasets: synthetic videos, folder scan and split, annotation checks, frame sampling, previews');

  data
    .command('synth')
    .description('generate small videos whose classes differ only by the direction of motion')
    .argument('<out-dir>', 'output folder (videos/, train.txt, val.txt, classes.txt)')
    .option('--classes <n>', 'number of classes (directions)', intOption('--classes', 2), 4)
    .option('--per-class <n>', 'videos per class', intOption('--per-class', 1), 10)
    .option('--seed <s>', 'random seed', intOption('--seed', 0), 0)
    .option('--frames <n>', 'frames per video', intOption('--frames', 1), 40)
    .option('--size <px>', 'frame side in pixels (even)', intOption('--size', 16), 64)
    .addOption(
      new Option('--codec <name>', 'video codec').choices(['h264', 'vp8', 'vp9', 'mjpeg', 'mpeg4', 'ffv1']).default('h264'),
    )
    .action(
      async (
        outDir: string,
        options: { classes: number; perClass: number; seed: number; frames: number; size: number; codec: VideoCodec },
      ) => {
        say(describeTools());
        const started = performance.now();
        const dataset = await generateSyntheticDataset({
          outDir: resolve(outDir),
          classes: options.classes,
          perClass: options.perClass,
          seed: options.seed,
          frames: options.frames,
          size: options.size,
          codec: options.codec,
        });
        const counts = {
          train: dataset.files.filter((file) => file.split === 'train').length,
          val: dataset.files.filter((file) => file.split === 'val').length,
        };
        process.stdout.write(
          `${dataset.files.length} videos in ${dataset.root} (${dataset.classes.join(', ')}), ${((performance.now() - started) / 1000).toFixed(1)} s\n` +
            `train ${counts.train}: ${dataset.annotations.train}\nval ${counts.val}: ${dataset.annotations.val}\nlabel map: ${dataset.annotations.labelMap}\n`,
        );
      },
    );

  data
    .command('scan')
    .description('scan ROOT/<class>/... and write train/val(/test) lists, classes.txt and report.json')
    .argument('<root>', 'dataset root: one folder per class')
    .requiredOption('--out <dir>', 'folder for the annotation files and report')
    .option('--val <fraction>', 'validation fraction per class', floatOption('--val', 0, 0.99), 0.2)
    .option('--test <fraction>', 'test fraction per class', floatOption('--test', 0, 0.99), 0)
    .option('--seed <s>', 'split seed', intOption('--seed', 0), 0)
    .option('--concurrency <n>', 'ffprobe processes at a time', intOption('--concurrency', 1), 4)
    .action(async (root: string, options: { out: string; val: number; test: number; seed: number; concurrency: number }) => {
      const rootPath = resolve(root);
      say(describeTools());
      const interactive = process.stderr.isTTY;
      const scan = await scanDataset(rootPath, {
        concurrency: options.concurrency,
        exclude: [resolve(options.out)],
        onProgress: (done, total) => {
          if (interactive) process.stderr.write(`\rprobing ${done}/${total}`);
        },
      });
      if (interactive) process.stderr.write('\n');
      const splitOptions = { val: options.val, test: options.test, seed: options.seed };
      const split = splitDataset(scan.items, scan.classes.length, splitOptions);
      const report = await writeScanOutputs(scan, split, splitOptions, resolve(options.out));
      const lines = [
        `${scan.items.length} usable ${scan.format === 'video' ? 'videos' : 'frame folders'} in ${scan.classes.length} classes; ${scan.skipped.length} skipped; ${scan.hiddenIgnored} hidden ignored`,
        ...report.classes.map(
          (entry) =>
            `  ${String(entry.index).padStart(3)} ${entry.name}: ${entry.total} (train ${entry.train}, val ${entry.val}${options.test > 0 ? `, test ${entry.test}` : ''})`,
        ),
        ...scan.skipped.map((item) => `  skipped ${item.path}: ${item.reason}`),
        ...report.warnings.map((warning) => `  warning: ${warning}`),
        ...Object.values(report.files).map((file) => `wrote ${file}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  data
    .command('check')
    .description('check an annotation file; prints every problem with its line number, exits 1 on errors')
    .argument('<ann-file>', 'video list or rawframe list')
    .requiredOption('--root <dir>', 'folder the paths are relative to')
    .option('--label-map <file>', 'class names, one per line (enables the label range check)')
    .addOption(new Option('--format <kind>', 'annotation format').choices(['auto', 'video', 'rawframes']).default('auto'))
    .option('--multi-label', 'several labels per line')
    .option('--with-offset', 'rawframe lines carry a start index')
    .option('--no-probe', 'skip opening every video with ffprobe (faster; misses unreadable and truncated files)')
    .option('--json', 'print the report as JSON')
    .action(
      async (
        annFile: string,
        options: {
          root: string;
          labelMap?: string;
          format: 'auto' | 'video' | 'rawframes';
          multiLabel?: boolean;
          withOffset?: boolean;
          probe: boolean;
          json?: boolean;
        },
      ) => {
        const report = await checkAnnotationFile(annFile, {
          root: resolve(options.root),
          probe: options.probe,
          format: options.format,
          multiLabel: options.multiLabel ?? false,
          ...(options.withOffset ? { withOffset: true } : {}),
          ...(options.labelMap ? { labelMap: options.labelMap } : {}),
        });
        if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else {
          for (const problem of report.problems)
            process.stdout.write(`${problem.file}:${problem.line}: ${problem.severity}: ${problem.message}\n`);
          process.stdout.write(
            `${report.file}: ${report.entries} entries (${report.format}${report.withOffset ? ' with offset' : ''}), ${report.errors} error(s), ${report.warnings} warning(s)\n`,
          );
        }
        if (report.errors > 0) process.exitCode = 1;
      },
    );

  data
    .command('sample')
    .description("print the frame indices mmaction2's SampleFrames would pick, as a JSON array")
    .requiredOption('--total-frames <n>', 'frames in the video', intOption('--total-frames', 1))
    .requiredOption('--clip-len <n>', 'frames per clip', intOption('--clip-len', 1))
    .option('--frame-interval <n>', 'step between sampled frames', intOption('--frame-interval', 1), 1)
    .option('--num-clips <n>', 'clips per video', intOption('--num-clips', 1), 1)
    .option('--test-mode', 'evenly spaced clips, no randomness (val/test)')
    .option('--uniform', 'SSv2 segment sampling (frame_uniform)')
    .option('--start-index <k>', 'added to every index (1 for mmaction2 frame folders)', intOption('--start-index', 0), 0)
    .addOption(new Option('--out-of-bound <option>', 'indices past the end').choices(['loop', 'repeat_last']).default('loop'))
    .option('--seed <s>', 'seed of the train-mode offsets (our generator; numpy draws differ)', intOption('--seed', 0), 0)
    .action(
      (options: {
        totalFrames: number;
        clipLen: number;
        frameInterval: number;
        numClips: number;
        testMode?: boolean;
        uniform?: boolean;
        startIndex: number;
        outOfBound: OutOfBoundOption;
        seed: number;
      }) => {
        const indices = sampleFrames(
          options.totalFrames,
          {
            clipLen: options.clipLen,
            frameInterval: options.frameInterval,
            numClips: options.numClips,
            testMode: options.testMode ?? false,
            uniform: options.uniform ?? false,
            startIndex: options.startIndex,
            outOfBound: options.outOfBound,
          },
          new Random(options.seed),
        );
        process.stdout.write(`${JSON.stringify(indices)}\n`);
      },
    );

  data
    .command('preview')
    .description('write a contact sheet of the frames the model would see for one sample (rows: views, columns: time)')
    .argument('<ann-file>', 'annotation file')
    .requiredOption('--root <dir>', 'folder the paths are relative to')
    .requiredOption('--index <k>', 'sample position in the annotation file (0-based)', intOption('--index', 0))
    .addOption(new Option('--pipeline <mode>', 'pipeline mode').choices(['train', 'val', 'test']).makeOptionMandatory())
    .requiredOption('--out <file.png>', 'PNG to write')
    .addOption(new Option('--preset <family>', 'recipe family').choices(['k400', 'ssv2', 'small']).default('k400'))
    .option('--clip-len <n>', 'override the frames per clip', intOption('--clip-len', 1))
    .option('--frame-interval <n>', 'override the frame interval', intOption('--frame-interval', 1))
    .option('--num-clips <n>', 'override the clips per video', intOption('--num-clips', 1))
    .option('--short-side <px>', 'override the short-side resize', intOption('--short-side', 1))
    .option('--crop-size <px>', 'override the crop size', intOption('--crop-size', 1))
    .option(
      '--rand-augment <n,m|off>',
      'train pipelines: imgaug RandAugment with N operations at magnitude M (SSv2 default 4,7), or off',
    )
    .option('--seed <s>', 'seed of the random augmentation', intOption('--seed', 0), 0)
    .action(
      async (
        annFile: string,
        options: {
          root: string;
          index: number;
          pipeline: PipelineMode;
          out: string;
          preset: PresetFamily;
          seed: number;
        } & Record<string, unknown>,
      ) => {
        const root = resolve(options.root);
        const loaded = await loadAnnotations(annFile, root);
        const entry = loaded.entries[options.index];
        if (!entry)
          throw new Error(
            `--index: expected 0..${loaded.entries.length - 1} (${loaded.entries.length} usable entries in ${annFile}), received ${options.index}`,
          );
        const spec = presetPipeline(options.preset, options.pipeline, presetOptionsFrom(options));
        for (const omission of spec.omissions ?? []) say(`note: ${omission}`);
        if (spec.randAugment)
          say(
            `RandAugment n=${spec.randAugment.n} m=${spec.randAugment.m} (imgaug; its first step flips with probability ${spec.randAugment.flipRatio})`,
          );
        const loader = await createLoader({
          samples: [entry],
          format: loaded.format,
          root,
          pipeline: spec,
          batchSize: 1,
          shuffle: false,
          seed: options.seed,
          workers: 1,
        });
        let written = false;
        for await (const batch of loader.epoch(0)) {
          const size = await writeContactSheet(
            resolve(options.out),
            batch.input,
            [batch.views, ...batch.shape.slice(1)],
            spec.mean,
            spec.std,
          );
          process.stdout.write(
            `${options.out}: ${entry.path} (line ${entry.line}, label ${entry.labels.join(' ')}), ${spec.name}, ${batch.views} view(s) x ${batch.shape[2]} frames of ${batch.shape[4]}x${batch.shape[3]}, sheet ${size.width}x${size.height}\n`,
          );
          written = true;
        }
        if (!written)
          throw new Error(
            `${annFile}:${entry.line}: "${entry.path}" could not be read: ${loader.stats.skips[0]?.reason ?? 'unknown reason'}`,
          );
      },
    );

  data
    .command('convert')
    .description('convert between an mmaction2 video list (+ label map) and Create ML CSV/JSON (video,label[,start,end])')
    .argument('<input>', 'input file: .csv / .json (Create ML) or a .txt video list')
    .requiredOption('--out <file>', 'output: .csv / .json (Create ML) or .txt (video list; classes.txt written next to it)')
    .option('--label-map <file>', 'class names (needed to read a video list; fixes class order when reading Create ML)')
    .action(async (input: string, options: { out: string; labelMap?: string }) => {
      const inputKind = extname(input).toLowerCase();
      const outputKind = extname(options.out).toLowerCase();
      const labelMap = options.labelMap ? await readLabelMap(options.labelMap) : undefined;
      if (labelMap && labelMap.problems.some((problem) => problem.severity === 'error')) {
        throw new Error(labelMap.problems.map((problem) => `${problem.file}:${problem.line}: ${problem.message}`).join('\n'));
      }
      let records;
      if (inputKind === '.csv' || inputKind === '.json') {
        const text = await readFile(input, 'utf8');
        const parsed = inputKind === '.csv' ? parseCreateMlCsv(text, input) : parseCreateMlJson(text, input);
        if (parsed.problems.length > 0)
          throw new Error(parsed.problems.map((problem) => `${problem.file}:${problem.line}: ${problem.message}`).join('\n'));
        records = parsed.records;
      } else {
        if (!labelMap) throw new Error('--label-map: needed to turn the numeric labels of a video list into class names');
        const loaded = await loadAnnotations(input, '.', { format: 'video' });
        if (loaded.problems.some((problem) => problem.severity === 'error'))
          throw new Error(loaded.problems.map((problem) => `${problem.file}:${problem.line}: ${problem.message}`).join('\n'));
        records = entriesToCreateMl(loaded.entries, labelMap.classes);
      }
      if (outputKind === '.csv') await writeFileAtomic(options.out, formatCreateMlCsv(records));
      else if (outputKind === '.json') await writeFileAtomic(options.out, formatCreateMlJson(records));
      else if (outputKind === '.txt') {
        const converted = createMlToEntries(records, labelMap?.classes, input);
        if (converted.problems.length > 0)
          throw new Error(converted.problems.map((problem) => `${problem.file}:${problem.line}: ${problem.message}`).join('\n'));
        await writeFileAtomic(options.out, formatAnnotationLines(converted.entries, 'video'));
        const mapPath = resolve(options.out, '..', 'classes.txt');
        if (!options.labelMap) await writeFileAtomic(mapPath, formatLabelMap(converted.classes));
      } else throw new Error(`--out: expected a .csv, .json or .txt file, received "${options.out}"`);
      process.stdout.write(`${records.length} entries written to ${options.out}\n`);
    });
}

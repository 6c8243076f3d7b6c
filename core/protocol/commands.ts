// The arguments of every workbench command as zod schemas: the service validates each call with
// its command's schema, the argument types of core/protocol/workbench.ts are inferred from them,
// and the command names are this map's keys (no list of names is written anywhere else).
// Errors name the field, what was expected and the value received (core/protocol/issues.ts).
import { z } from 'zod';

const absolutePath = (field: string) =>
  z
    .string({ error: `${field}: expected a path` })
    .min(1, `${field}: expected a path, received ""`)
    .refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), { message: `${field}: expected an absolute path` });

const none = z.object({}).strict();
const runId = z.object({ runId: z.string().min(1) });

/** Cluster commands validate their arguments in core/cluster/service.ts (ClusterCommandHandler); the names live here. */
const cluster = z.unknown();

export const commandArgs = {
  'settings.get': none,
  'fs.list': z.object({ path: z.string().optional() }),
  'datasets.list': none,
  'datasets.scan': z.object({ root: absolutePath('root') }),
  'datasets.write': z.object({
    root: absolutePath('root'),
    outDir: absolutePath('outDir'),
    val: z.number().min(0).max(0.9),
    test: z.number().min(0).max(0.9),
    seed: z.number().int().min(0),
  }),
  'datasets.check': z.object({ annFile: absolutePath('annFile'), root: absolutePath('root') }),
  'datasets.videos': z.object({ annFile: absolutePath('annFile'), root: absolutePath('root') }),
  'datasets.preview': z.object({
    annFile: absolutePath('annFile'),
    root: absolutePath('root'),
    preset: z.enum(['k400', 'ssv2', 'small']),
    mode: z.enum(['train', 'val', 'test']),
    index: z.number().int().min(0),
    seed: z.number().int().min(0),
  }),
  'config.presets': none,
  'config.validate': z.object({ config: z.unknown(), trainSize: z.number().int().min(0).optional() }),
  'train.start': z.object({ config: z.unknown(), name: z.string() }),
  'train.control': z.object({ runId: z.string().min(1), command: z.enum(['pause', 'resume', 'stop']) }),
  'train.resume': runId,
  'runs.list': none,
  /** maxPoints: iteration curves of long runs come decimated to about this many points each (default 4000). */
  'runs.curves': z.object({ runIds: z.array(z.string()).max(50), maxPoints: z.number().int().min(10).max(100_000).optional() }),
  'runs.csv': z.object({ runIds: z.array(z.string()).min(1) }),
  'runs.checkpoints': none,
  /** views: clips x crops per video, softmax averaged (default 1 x 1, the validation protocol). */
  'compare.checkpoints': z.object({
    checkpoints: z.array(absolutePath('checkpoints[]')).min(2).max(4),
    annFile: absolutePath('annFile'),
    root: absolutePath('root'),
    views: z.object({ clips: z.number().int().min(1).max(10), crops: z.union([z.literal(1), z.literal(3)]) }).optional(),
  }),
  'attention.view': z.object({
    checkpoint: absolutePath('checkpoint'),
    video: absolutePath('video'),
    stage: z.number().int().min(0),
    block: z.number().int().min(0),
  }),
  'attention.window': z.object({
    checkpoint: absolutePath('checkpoint'),
    video: absolutePath('video'),
    stage: z.number().int().min(0),
    block: z.number().int().min(0),
    window: z.number().int().min(0),
  }),
  'video.predict': z.object({ checkpoint: absolutePath('checkpoint'), video: absolutePath('video') }),
  'cluster.list': cluster,
  'cluster.save': cluster,
  'cluster.remove': cluster,
  'cluster.check': cluster,
  'cluster.preview': cluster,
  'cluster.submit': cluster,
  'jobs.list': cluster,
  'jobs.sync': cluster,
  'jobs.cancel': cluster,
  'jobs.resume': cluster,
  'jobs.clone': cluster,
  'jobs.pull': cluster,
  'jobs.log': cluster,
} as const satisfies Record<string, z.ZodType>;

export type CommandNameOfMap = keyof typeof commandArgs;
/** What a client sends for a command (zod input). */
export type ArgsInput<N extends CommandNameOfMap> = z.input<(typeof commandArgs)[N]>;
/** What a handler receives after validation (zod output). */
export type ArgsOutput<N extends CommandNameOfMap> = z.output<(typeof commandArgs)[N]>;

/** Every command name, in the map's order. */
export const COMMAND_NAMES = Object.keys(commandArgs) as CommandNameOfMap[];

/** Deepest nesting of arguments accepted (a run config is about 5 levels deep). */
export const MAX_ARGUMENT_DEPTH = 64;
/** Most values (objects, arrays and scalars together) in one call's arguments. */
export const MAX_ARGUMENT_VALUES = 200_000;

/**
 * Refuses arguments nested deeper than MAX_ARGUMENT_DEPTH or holding more than MAX_ARGUMENT_VALUES
 * values, without recursion (a 100 000-deep value must not overflow the stack of its checker either).
 */
export function checkArgumentBounds(command: string, args: unknown): void {
  const stack: { value: unknown; depth: number }[] = [{ value: args, depth: 0 }];
  let values = 0;
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    values += 1;
    if (values > MAX_ARGUMENT_VALUES)
      throw new Error(`${command}: arguments hold more than ${MAX_ARGUMENT_VALUES} values; refused`);
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_ARGUMENT_DEPTH)
      throw new Error(`${command}: arguments are nested deeper than ${MAX_ARGUMENT_DEPTH} levels; refused`);
    for (const inner of Object.values(value as object)) stack.push({ value: inner, depth: depth + 1 });
  }
}

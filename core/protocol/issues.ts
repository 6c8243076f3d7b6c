// Validation issues as data: the one place a zod error becomes {path, message, received}, and the
// one error type that carries them. The CLI prints an IssuesError's message; the service sends its
// issues as they are (config.validate), so nothing parses a message back into fields.
import type { z } from 'zod';

export interface ConfigIssue {
  /** Dotted path of the field ("data.pipeline.clip_len"), "(root)" for the whole value. */
  path: string;
  message: string;
  /** The value received at that path as JSON, null when absent or too long to be useful in a form. */
  received: string | null;
}

/** Longest received value (JSON characters) an issue repeats; a whole config helps nobody. */
const MAX_RECEIVED = 120;

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let node = value;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/** JSON of a received value, never a throw: BigInt as "123n", a cycle (or anything unserialisable) as undefined. */
function jsonOrUndefined(value: unknown): string | undefined {
  try {
    return JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? `${item}n` : item));
  } catch {
    return undefined;
  }
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_value') return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return issue.message;
}

/** The issues of a failed parse of `value`, each naming its field, what is wrong and what was received. */
export function issuesOf(error: z.ZodError, value: unknown): ConfigIssue[] {
  return error.issues.map((issue) => {
    let received: string | null = null;
    if (issue.code !== 'unrecognized_keys') {
      const text = jsonOrUndefined(valueAt(value, issue.path));
      received = text === undefined ? null : text.length > MAX_RECEIVED ? null : text;
    }
    return { path: issue.path.map(String).join('.') || '(root)', message: describe(issue), received };
  });
}

/** "path: message (received X)" — one line per issue. */
export function issueLine(issue: ConfigIssue): string {
  return `${issue.path}: ${issue.message}${issue.received === null ? '' : ` (received ${issue.received})`}`;
}

/** An expected failure of validation: the issues as data, and a message listing them. */
export class IssuesError extends Error {
  constructor(
    readonly source: string,
    readonly issues: ConfigIssue[],
    /**
     * 'block' (files): a heading ("Invalid SOURCE:" unless given) then one indented line per issue;
     * 'line' (command arguments): "SOURCE: a; b".
     */
    options: { style?: 'block' | 'line'; heading?: string } = {},
  ) {
    super(
      options.style === 'line'
        ? `${source}: ${issues.map(issueLine).join('; ')}`
        : `${options.heading ?? `Invalid ${source}:`}\n${issues.map((issue) => `  ${issueLine(issue)}`).join('\n')}`,
    );
    this.name = 'IssuesError';
  }
}

/** The issues an error carries: an IssuesError's own, else the whole message as one issue at the root. */
export function issuesFromError(error: unknown): ConfigIssue[] {
  if (error instanceof IssuesError) return error.issues;
  return [{ path: '(root)', message: error instanceof Error ? error.message : String(error), received: null }];
}

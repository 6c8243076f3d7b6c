// The annotation check can report the same problem on many lines (a label outside the label map on
// every line of a class): one entry per distinct message, with the lines it was found on.

export interface ProblemGroup {
  message: string;
  lines: number[];
  /** Times the message was reported (lines without a number count too). */
  count: number;
}

export function groupProblems(problems: readonly { line: number | null; message: string }[]): ProblemGroup[] {
  const groups = new Map<string, ProblemGroup>();
  for (const problem of problems) {
    let group = groups.get(problem.message);
    if (!group) {
      group = { message: problem.message, lines: [], count: 0 };
      groups.set(problem.message, group);
    }
    group.count += 1;
    if (problem.line !== null) group.lines.push(problem.line);
  }
  return [...groups.values()];
}

/** "line 4", "lines 4, 9, 12", "lines 4, 9, 12 and 47 more". */
export function describeLines(lines: readonly number[], shown = 8): string {
  if (lines.length === 0) return '';
  if (lines.length === 1) return `line ${lines[0]}`;
  const head = lines.slice(0, shown).join(', ');
  return lines.length > shown ? `lines ${head} and ${lines.length - shown} more` : `lines ${head}`;
}

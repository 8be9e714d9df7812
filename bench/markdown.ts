/** Formatting for the benchmark report. Pure. */

export const ms = (value: number | undefined, digits = 1): string =>
  value === undefined || Number.isNaN(value) ? '-' : `${value.toFixed(digits)} ms`;
export const pct = (ratio: number, digits = 2): string =>
  Number.isNaN(ratio) ? '-' : `${(ratio * 100).toFixed(digits)}%`;
export const int = (value: number): string =>
  Number.isNaN(value) ? '-' : Math.round(value).toLocaleString('en-US');

/** A Markdown table with padded columns (the layout `biome format` gives Markdown tables). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${widths.map((w, i) => (cells[i] ?? '').padEnd(w)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

interface Section {
  readonly key: string;
  readonly text: string;
}

/** Splits a report at its `## ` headings; a section's key is its heading up to the first ':' or '('. */
function splitSections(text: string): { head: string; sections: Section[] } {
  const parts = text.split(/^(?=## )/m);
  const head = parts[0]?.startsWith('## ') ? '' : (parts.shift() ?? '');
  return {
    head,
    sections: parts.map((part) => {
      const heading = part.slice(0, part.indexOf('\n') < 0 ? part.length : part.indexOf('\n'));
      return { key: heading.split(/[:(]/)[0]?.trim() ?? heading, text: part.trimEnd() };
    }),
  };
}

const KEPT_MARK = '_Kept from an earlier run';
const NOT_MEASURED = '## Not measured';

/**
 * The report of a run of some sections merged into the existing report: the fresh head (date,
 * machine, load) and fresh sections; the existing sections this run did not measure are kept in
 * place, each marked with the run that wrote it (taken from the existing head). Pure.
 */
export function mergeReports(existing: string, fresh: string): string {
  const old = splitSections(existing);
  const now = splitSections(fresh);
  const origin = /Written by (`[^`]+`) on (\S+) \(([^;)]+)/.exec(old.head);
  const load = /Load average \(1 min\) at the start and the end of the run: ([\d.]+ \/ [\d.]+)/.exec(
    old.head,
  );
  const mark = origin
    ? `${KEPT_MARK}: ${origin[1]} on ${origin[2]} (${origin[3]?.startsWith('QUICK') ? 'quick run' : origin[3]}` +
      `${load ? `; load average (1 min) at its start / end ${load[1]}` : ''}), same machine._`
    : `${KEPT_MARK}._`;
  const freshByKey = new Map(now.sections.map((s) => [s.key, s]));
  const used = new Set<string>();
  const out: string[] = [];
  for (const section of old.sections) {
    if (section.text.startsWith(NOT_MEASURED)) continue;
    const replacement = freshByKey.get(section.key);
    if (replacement) {
      out.push(replacement.text);
      used.add(section.key);
    } else if (section.text.includes(KEPT_MARK)) {
      out.push(section.text);
    } else {
      const newline = section.text.indexOf('\n');
      out.push(`${section.text.slice(0, newline)}\n\n${mark}${section.text.slice(newline)}`);
    }
  }
  for (const section of now.sections) if (!used.has(section.key)) out.push(section.text);
  return `${now.head.trimEnd()}\n\n${out.join('\n\n')}\n`;
}

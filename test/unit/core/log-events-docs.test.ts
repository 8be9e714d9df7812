import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LOG_EVENTS, type LogEventName, logEventsOf } from '../../../core/log-events.ts';

/**
 * The docs list exactly the catalog (core/log-events.ts): docs/worker.md "Log events" has one table row
 * per worker event with its levels and fields, the README's "Log events" names every worker event,
 * docs/notify-check.md "Logs" names every event of the Lambda.
 */

const read = (path: string) =>
  readFileSync(fileURLToPath(new URL(`../../../${path}`, import.meta.url)), 'utf8');

/** The text of a `## title` section, up to the next `## ` heading. */
function section(markdown: string, title: string): string {
  const start = markdown.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`no section ${title}`);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end < 0 ? undefined : end);
}

const EVENT_NAME = /`([a-z]+\.[a-z_]+)`/g;
const namesIn = (text: string) => new Set([...text.matchAll(EVENT_NAME)].map((m) => m[1] as string));

interface DocRow {
  readonly levels: string[];
  readonly fields: string[];
}

/** Rows `| \`event\` | level/level | field, field? (values), ... | when |` of a Markdown table. */
function tableRows(text: string): Map<string, DocRow> {
  const rows = new Map<string, DocRow>();
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const name = /^`([a-z]+\.[a-z_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (name === undefined) continue;
    if (rows.has(name)) throw new Error(`${name} is listed twice`);
    // Parenthesised text after a field lists its values; it is not a field.
    const fieldText = (cells[3] ?? '').replace(/\([^)]*\)/g, '');
    rows.set(name, {
      levels: (cells[2] ?? '').split('/').map((level) => level.trim()),
      fields: fieldText
        .split(',')
        .map((field) => field.trim())
        .filter((field) => field !== ''),
    });
  }
  return rows;
}

const catalogRow = (name: LogEventName): DocRow => {
  const spec = LOG_EVENTS[name];
  return {
    levels: [...spec.levels],
    fields: Object.entries(spec.fields).map(([field, f]) => (f.optional ? `${field}?` : field)),
  };
};

describe('log event docs', () => {
  it('docs/worker.md "Log events" has one row per worker event of the catalog, with its levels and fields', () => {
    const rows = tableRows(section(read('docs/worker.md'), 'Log events'));
    const worker = logEventsOf('worker');
    expect([...rows.keys()].sort()).toEqual([...worker].sort());
    for (const name of worker) {
      const row = rows.get(name);
      const expected = catalogRow(name);
      expect({ name, levels: row?.levels.sort(), fields: row?.fields.sort() }).toEqual({
        name,
        levels: expected.levels.sort(),
        fields: expected.fields.sort(),
      });
    }
  });

  it('the README "Log events" names exactly the worker events of the catalog', () => {
    const names = namesIn(section(read('README.md'), 'Log events'));
    expect([...names].sort()).toEqual([...logEventsOf('worker')].sort());
  });

  it('docs/notify-check.md "Logs" names exactly the Lambda events of the catalog', () => {
    const names = namesIn(section(read('docs/notify-check.md'), 'Logs'));
    expect([...names].sort()).toEqual([...logEventsOf('notify-check')].sort());
  });

  it('the table parser reads levels, optional fields and value lists', () => {
    const rows = tableRows(
      '| `a.b` | warn/info | node, role (`primary`, `replica`), keyBase64? | when |\n| `x` | y | z | w |',
    );
    expect([...rows]).toEqual([
      ['a.b', { levels: ['warn', 'info'], fields: ['node', 'role', 'keyBase64?'] }],
    ]);
  });
});

import {
  cell,
  changeCell,
  clockTime,
  count,
  duration,
  expiryLagText,
  primariesCell,
  roleCell,
  valuesText,
  volatileText,
} from './format.ts';
import { formatMs, formatPercent } from './statistics.ts';
import type { StatusSnapshot } from './status-model.ts';

/**
 * The live terminal view of `npm start`: one full screen of plain ANSI text, redrawn about once a
 * second. `renderLiveView` is pure (tests read its text); `LiveScreen` owns the terminal: alternate
 * screen, hidden cursor, raw-mode stdin, and restores all of it on close, also when closed twice.
 */

export interface LiveViewOptions {
  readonly columns: number;
  /** false: no colour escapes (tests, NO_COLOR). */
  readonly color: boolean;
}

const ESC = '\u001b[';
const style = (color: boolean, code: string, text: string) =>
  color ? `${ESC}${code}m${text}${ESC}0m` : text;

export const KEY_HELP =
  '[k] kill leader (SIGKILL)  [t] stop leader (SIGTERM)  [f] fail over a primary  [+/-] rate  [q] quit';

/** The screen's lines, without cursor movement. */
export function renderLiveView(snapshot: StatusSnapshot, options: LiveViewOptions): string[] {
  const { color } = options;
  const bold = (t: string) => style(color, '1', t);
  const green = (t: string) => style(color, '32', t);
  const yellow = (t: string) => style(color, '33', t);
  const red = (t: string) => style(color, '31', t);
  const dim = (t: string) => style(color, '2', t);
  const s = snapshot.settings;
  const lines: string[] = [];

  lines.push(
    `${bold('keyspace-leader')} local run   up ${duration(snapshot.nowMs - snapshot.startedAtMs)}   ` +
      `cluster ${s.primaries} primaries x ${s.replicasPerPrimary} replica(s)` +
      (s.security ? ` (${s.security})` : '') +
      `   LEADER_NAME ${s.leaderName}   ` +
      `keys ${bold(`${count(s.keysPerSecond)}/s`)} ttl ${count(s.keyTtlMs)} ms`,
  );
  lines.push('');

  const leaders = snapshot.leaders;
  if (leaders.length === 0) {
    lines.push(`Leader: ${red('none')}`);
  } else if (leaders.length === 1) {
    const leader = leaders[0];
    if (leader) {
      lines.push(
        `Leader: ${green(bold(leader.id))} (pid ${leader.pid ?? '?'})   fencing token ${bold(String(leader.fencingToken ?? '?'))}` +
          `   since ${leader.lastChange ? clockTime(leader.lastChange.atMs) : '?'}`,
      );
    }
  } else {
    lines.push(
      `Leader: ${red(`${leaders.length} workers claim leadership: ${leaders.map((l) => l.id).join(', ')}`)}`,
    );
  }
  const last = snapshot.handovers[snapshot.handovers.length - 1];
  if (last && last.cause !== 'initial') {
    const gap =
      last.gapMs !== undefined ? `${count(Math.round(last.gapMs))} ms without a leader` : 'overlapping';
    lines.push(
      `Last hand-over: ${last.from ?? '?'} -> ${last.to} at ${clockTime(last.acquiredAtMs)}, previous leader ${last.cause}, ${gap}`,
    );
  } else {
    lines.push(dim('Last hand-over: none yet'));
  }
  lines.push('');

  const knownPrimaries = snapshot.primaries.length;
  const header = `${cell('WORKER', 12)} ${cell('PID', 8)} ${cell('ROLE', 22)} ${cell('PRIMARIES', 10)} ${cell('PROCESSED', 10)} LAST LEADERSHIP CHANGE`;
  lines.push(bold(header));
  for (const row of snapshot.workers) {
    const role = cell(roleCell(row), 22);
    const text =
      `${cell(row.id, 12)} ${cell(String(row.pid ?? '-'), 8)} ${row.role === 'leader' ? green(role) : row.state === 'exited' ? dim(role) : role} ` +
      `${cell(primariesCell(row, knownPrimaries), 10)} ${cell(count(row.processed), 10)} ${changeCell(row.lastChange)}`;
    lines.push(row.state === 'exited' ? dim(text) : text);
  }
  lines.push('');

  lines.push(bold(`${cell('PRIMARY', 22)} ${cell('KEYS SET', 10)} ${cell('EXPIRED (bare subscriber)', 26)}`));
  for (const primary of snapshot.primaries) {
    lines.push(
      `${cell(primary.node, 22)} ${cell(count(primary.keysSet), 10)} ${cell(count(primary.published), 26)}`,
    );
  }
  lines.push('');

  const t = snapshot.totals;
  const ratio = formatPercent(t.matched, t.expected, 2);
  lines.push(
    `${bold('Totals')}: expected ${bold(count(t.expected))}   processed ${bold(count(t.processed))} (${ratio} of expected)   ` +
      `missing ${t.missing > 0 ? yellow(count(t.missing)) : '0'}   duplicates ${t.duplicates > 0 ? yellow(count(t.duplicates)) : '0'}   ` +
      `unexpected ${count(t.unexpected)}   in flight ${count(t.pending)}`,
  );
  lines.push(
    `Rates: expected ${snapshot.rates.expected.toFixed(0)}/s   processed ${snapshot.rates.processed.toFixed(0)}/s   ` +
      `added latency (seen by this runner) p50 ${formatMs(snapshot.addedLatency.p50)} p99 ${formatMs(snapshot.addedLatency.p99)}   ` +
      `keys set ${count(snapshot.generator.sent)}${snapshot.generator.failed > 0 ? yellow(` (${count(snapshot.generator.failed)} failed)`) : ''}`,
  );
  const volatile = volatileText(snapshot);
  lines.push(
    `Expiry lag (deadline -> handler): ${expiryLagText(snapshot, '   ')}` +
      (volatile ? `   ${volatile}` : ''),
  );
  lines.push(`Values (sizes, never contents): ${valuesText(snapshot, '   ')}`);
  lines.push('');
  lines.push(bold('Recent'));
  for (const note of snapshot.notes) {
    const text = `  ${clockTime(note.atMs)} ${note.text}`;
    lines.push(note.level === 'warn' ? yellow(text) : text);
  }
  lines.push('');
  lines.push(dim(KEY_HELP));
  return lines.map((line) => clip(line, options.columns));
}

/** Cuts a line with escapes to `columns` visible characters (escapes are kept, never counted). */
export function clip(line: string, columns: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\u001b') {
      const end = line.indexOf('m', i);
      if (end !== -1) {
        out += line.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    if (visible >= columns) continue;
    out += line[i];
    visible++;
  }
  return out;
}

export interface TerminalIO {
  readonly output: NodeJS.WriteStream;
  readonly input: NodeJS.ReadStream;
}

/** Owns the terminal while the live view runs. */
export class LiveScreen {
  private open = false;
  private readonly onData = (data: Buffer) => {
    for (const char of data.toString('utf8')) this.onKey(char);
  };

  constructor(
    private readonly io: TerminalIO,
    private readonly onKey: (key: string) => void,
  ) {}

  start(): void {
    if (this.open) return;
    this.open = true;
    // Alternate screen and hidden cursor; raw mode so single keys arrive (Ctrl-C arrives as \u0003).
    this.io.output.write(`${ESC}?1049h${ESC}?25l`);
    if (this.io.input.isTTY) this.io.input.setRawMode(true);
    this.io.input.on('data', this.onData);
    this.io.input.resume();
  }

  draw(lines: readonly string[]): void {
    if (!this.open) return;
    const rows = this.io.output.rows ?? 50;
    const body = lines
      .slice(0, Math.max(1, rows - 1))
      .map((line) => `${line}${ESC}K`)
      .join('\n');
    this.io.output.write(`${ESC}H${body}${ESC}J`);
  }

  /** Restores the terminal; safe to call more than once and from an exit hook (synchronous). */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.io.input.off('data', this.onData);
    if (this.io.input.isTTY) this.io.input.setRawMode(false);
    this.io.input.pause();
    this.io.output.write(`${ESC}?25h${ESC}?1049l`);
  }
}

import type { LeadershipChange, WorkerRow } from './status-model.ts';

/** Text pieces shared by the live and the plain view (pure). */

/** `HH:MM:SS.mmm` in UTC, the zone of the workers' `time` fields. */
export function clockTime(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

export function duration(ms: number): string {
  const totalS = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = totalS % 60;
  const mmss = `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

export function primariesCell(row: WorkerRow, fallbackKnown: number): string {
  if (row.state === 'exited') return '-';
  const known = row.knownPrimaries ?? fallbackKnown;
  return `${row.subscribedPrimaries ?? 0}/${known}`;
}

export function roleCell(row: WorkerRow): string {
  if (row.state === 'exited') return `exited (${row.exit ?? '?'})`;
  if (row.role === 'leader') return 'LEADER';
  if (row.state === 'starting') return 'starting';
  if (row.state === 'stopping') return 'stopping';
  return row.role === 'follower' ? 'follower' : 'running';
}

export function changeCell(change: LeadershipChange | undefined): string {
  if (!change) return '-';
  const token = change.fencingToken !== undefined ? ` (token ${change.fencingToken})` : '';
  const detail = change.detail ? ` ${change.detail}` : '';
  return `${change.kind} ${clockTime(change.atMs)}${token}${detail}`;
}

/** Pads or cuts `text` to exactly `width` characters. */
export function cell(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text.padEnd(width);
}

import type { LagStats } from './expiry-lag.ts';
import { formatLag } from './statistics.ts';
import type { LeadershipChange, StatusSnapshot, WorkerRow } from './status-model.ts';

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

/** `p50 2.1 ms p99 8.0 ms (1,234 keys)` for one kind of expiry lag (`-` without samples). */
export function lagCell(stats: LagStats): string {
  return `p50 ${formatLag(stats.p50)} p99 ${formatLag(stats.p99)} (${count(stats.count)} ${stats.count === 1 ? 'key' : 'keys'})`;
}

/** `tracked p50 ... (n keys) | native p50 ... (n keys)`, with `separator` between the kinds. */
export function expiryLagText(snapshot: StatusSnapshot, separator: string): string {
  const lag = snapshot.expiryLag;
  return `tracked ${lagCell(lag.tracked)}${separator}native ${lagCell(lag.native)}`;
}

/** `volatile keys 20,000 (TTL 1 h)` and, once deleted, `, 0 left`; undefined without `--volatile`. */
export function volatileText(snapshot: StatusSnapshot): string | undefined {
  const state = snapshot.volatileKeys;
  if (!snapshot.settings.volatileKeys || !state) return undefined;
  return `volatile keys ${count(state.loaded)} (TTL 1 h)${state.left !== undefined ? `, ${count(state.left)} left` : ''}`;
}

/** `512 B`, `4.0 KiB`, `1.2 MiB`; `-` for NaN. */
export function formatBytes(bytes: number): string {
  if (Number.isNaN(bytes)) return '-';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * `captured 12 (string 10, hash 2) size p50 40 B max 1.2 KiB | missing 3 (not-tracked 2, read-late 1)`,
 * with `separator` between the two halves: counts, types and sizes of the values the handler got,
 * never contents. `none reported ...` while no line has a value field.
 */
export function valuesText(snapshot: StatusSnapshot, separator: string): string {
  const v = snapshot.values;
  if (v.captured === 0 && v.missing === 0)
    return v.unreported > 0 ? 'none reported (no value capture on the key.processed lines)' : '-';
  const list = (entries: readonly (readonly [string, number])[]) =>
    entries.map(([name, n]) => `${name} ${count(n)}`).join(', ');
  const captured =
    `captured ${count(v.captured)}` +
    (v.captured > 0
      ? ` (${list(v.byType)}) size p50 ${formatBytes(v.bytesP50)} max ${formatBytes(v.bytesMax)}`
      : '');
  return `${captured}${separator}missing ${count(v.missing)}${v.missing > 0 ? ` (${list(v.byReason)})` : ''}`;
}

import {
  changeCell,
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
 * The `--plain` view: a block of text lines every few seconds, for terminals that are not interactive
 * and for tests. Pure. `renderSummaryLine` is the last line of a run, in a stable `key=value` form
 * that scripts (and test/integration/local/start.test.ts) read.
 */

/** One status block (notes are printed as they happen, not here). */
export function renderPlainBlock(snapshot: StatusSnapshot): string[] {
  const lines: string[] = [];
  const t = snapshot.totals;
  const leaders = snapshot.leaders;
  const leaderText =
    leaders.length === 0
      ? 'leader none'
      : leaders.length === 1
        ? `leader ${leaders[0]?.id} (token ${leaders[0]?.fencingToken ?? '?'})`
        : `LEADERS ${leaders.map((l) => l.id).join(',')}`;
  lines.push(
    `[${duration(snapshot.nowMs - snapshot.startedAtMs)}] ${leaderText} | expected ${count(t.expected)} ` +
      `processed ${count(t.processed)} (${formatPercent(t.matched, t.expected, 2)}) missing ${count(t.missing)} ` +
      `duplicates ${count(t.duplicates)} in-flight ${count(t.pending)} | ${count(snapshot.settings.keysPerSecond)} keys/s ` +
      `| added latency p50 ${formatMs(snapshot.addedLatency.p50)} p99 ${formatMs(snapshot.addedLatency.p99)}` +
      (snapshot.settings.security ? ` | ${snapshot.settings.security}` : ''),
  );
  const volatile = volatileText(snapshot);
  lines.push(`  expiry lag: ${expiryLagText(snapshot, ' | ')}${volatile ? ` | ${volatile}` : ''}`);
  lines.push(`  values: ${valuesText(snapshot, ' | ')}`);
  const known = snapshot.primaries.length;
  for (const row of snapshot.workers) {
    lines.push(
      `  ${row.id} pid ${row.pid ?? '-'} ${roleCell(row)} primaries ${primariesCell(row, known)} ` +
        `processed ${count(row.processed)} last ${changeCell(row.lastChange)}`,
    );
  }
  lines.push(
    `  primaries: ${snapshot.primaries.map((p) => `${p.node} set ${count(p.keysSet)} expired ${count(p.published)}`).join(' | ') || '-'}`,
  );
  return lines;
}

/** `summary: leaders=1 leader=worker-2 expected=700 processed=699 ...` */
export function renderSummaryLine(snapshot: StatusSnapshot): string {
  const t = snapshot.totals;
  const fields: Record<string, string | number> = {
    leaders: snapshot.leaders.length,
    leader: snapshot.leaders.map((l) => l.id).join(',') || 'none',
    fencingToken: snapshot.leaders[0]?.fencingToken ?? '-',
    expected: t.expected,
    processed: t.processed,
    matched: t.matched,
    missing: t.missing,
    unexpected: t.unexpected,
    duplicates: t.duplicates,
    inFlight: t.pending,
    handovers: snapshot.handovers.length,
    keysSet: snapshot.generator.sent,
    keysFailed: snapshot.generator.failed,
    lagTracked: snapshot.expiryLag.tracked.count,
    lagTrackedP50: lagField(snapshot.expiryLag.tracked.p50),
    lagTrackedP99: lagField(snapshot.expiryLag.tracked.p99),
    lagNative: snapshot.expiryLag.native.count,
    lagNativeP50: lagField(snapshot.expiryLag.native.p50),
    lagNativeP99: lagField(snapshot.expiryLag.native.p99),
    valuesCaptured: snapshot.values.captured,
    valuesMissing: snapshot.values.missing,
    volatileKeys: snapshot.volatileKeys?.loaded ?? 0,
    volatileLeft: snapshot.volatileKeys?.left ?? '-',
  };
  return `summary: ${Object.entries(fields)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;
}

/** A lag in ms with one decimal, `-` when there is none. */
function lagField(ms: number): string | number {
  return Number.isNaN(ms) ? '-' : Math.round(ms * 10) / 10;
}

/** Parses a summary line back (for tests and scripts); undefined when `line` is not one. */
export function parseSummaryLine(line: string): Record<string, string> | undefined {
  const match = /^summary: (.*)$/.exec(line.trim());
  if (!match?.[1]) return undefined;
  const fields: Record<string, string> = {};
  for (const pair of match[1].split(' ')) {
    const eq = pair.indexOf('=');
    if (eq > 0) fields[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return fields;
}

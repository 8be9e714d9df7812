import type { NotifyCheckReport } from './report.ts';

/** Renders the report for a person (`npm run report`): plain text, fixed-width columns, no colour. */

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const quoted = (value: string | null) => (value === null ? '?' : `"${value}"`);

export function formatReportTable(report: NotifyCheckReport): string {
  const out: string[] = [];
  out.push(
    `notify-check run ${report.runId}  ${report.startedAt}  ${report.durationMs} ms  mode ${report.notifyMode}  precise expiry ${report.preciseExpiry ? 'on' : 'off'}  leader name ${report.leaderName}`,
  );
  const c = report.cluster;
  out.push(`cluster: ${c.primaries} primaries, ${c.replicas} replicas (topology from ${c.answeredBy})`);
  out.push('');
  out.push(
    ...table(
      ['NODE', 'ROLE', 'METHOD', 'STATUS', 'BEFORE', 'AFTER', 'NOTE'],
      report.nodes.map((n) => [
        n.address,
        n.role,
        n.method,
        n.status,
        quoted(n.before),
        quoted(n.after),
        n.error ?? (n.drifted ? 'flags were missing' : ''),
      ]),
    ),
  );
  if (report.parameterGroup) {
    const g = report.parameterGroup;
    out.push('');
    out.push(`parameter groups of ${g.replicationGroupId}: ${g.status}${g.error ? ` (${g.error})` : ''}`);
    for (const entry of g.groups)
      out.push(`  ${entry.name}: ${entry.status}, ${quoted(entry.before)} -> ${quoted(entry.after)}`);
    for (const m of g.members) {
      out.push(
        `  member ${m.cacheClusterId}: group ${m.parameterGroup ?? '?'}, apply status ${m.parameterApplyStatus ?? '?'}`,
      );
    }
  }
  out.push('');
  out.push(
    ...table(
      ['PRIMARY', 'SLOTS', 'CANARY', 'LATENCY', 'EXPIRE EVENTS', 'NOTE'],
      report.canaries.map((k) => [
        k.node,
        k.slots,
        k.verified ? 'verified' : 'NOT VERIFIED',
        k.latencyMs === null ? '-' : `${k.latencyMs} ms`,
        k.expireEventsFlow === null ? '-' : k.expireEventsFlow ? 'flow' : 'NONE',
        k.error ?? '',
      ]),
    ),
  );
  out.push('');
  const l = report.leader;
  out.push(`leader: ${l.summary}`);
  if (l.taskArn) out.push(`  task ${l.taskArn}`);
  const e = report.ecs;
  if (!e.checked) {
    out.push(`ecs: not checked: ${e.reason}`);
  } else if (e.error !== null) {
    out.push(`ecs: ${e.cluster}/${e.service}: failed (${e.error})`);
  } else {
    out.push(
      `ecs: ${e.cluster}/${e.service}: ${e.workersRunning} of ${e.tasksListed} listed worker task(s) running`,
    );
    if (e.leaderTask) {
      const t = e.leaderTask;
      out.push(
        `  leader's task: ${t.found ? `${t.lastStatus}, desired ${t.desiredStatus}, health ${t.healthStatus}` : 'not known to ECS'}` +
          `${e.leaderTaskStopped ? '  << STOPPED' : ''}`,
      );
    }
  }
  out.push(
    `metrics: ${Object.entries(report.metrics)
      .map(([name, value]) => `${name}=${value}`)
      .join(' ')}`,
  );
  if (report.changes.length > 0) {
    out.push('changes:');
    for (const change of report.changes) out.push(`  - ${change}`);
  }
  if (report.problems.length > 0) {
    out.push(`PROBLEMS (${report.problems.length}):`);
    for (const problem of report.problems) out.push(`  - ${problem}`);
  } else {
    out.push('OK: every node configured, every primary verified, a leader is present');
  }
  return `${out.join('\n')}\n`;
}

import type { ChaosResult } from './chaos-run.ts';

/** The printed figures of one chaos run (pure). `--json` prints the ChaosResult itself instead. */

const n = (value: number) => value.toLocaleString('en-US');
const ms = (value: number | undefined) => (value === undefined ? '-' : `${n(Math.round(value))} ms`);
const seconds = (offsetMs: number | undefined) =>
  offsetMs === undefined ? '-' : `+${(offsetMs / 1000).toFixed(1)} s`;

export function formatChaosReport(result: ChaosResult): string[] {
  const { account: a, settings: s, cluster: c } = result;
  const lines: string[] = [];
  const row = (label: string, value: string, detail = '') =>
    lines.push(`  ${label.padEnd(22)}${value.padEnd(12)}${detail}`.trimEnd());

  lines.push(
    `${result.scenario}: ${result.summary}`,
    `  ${s.rate} keys/s for ${s.durationS} s (TTL ${s.ttlMs} ms), ${s.workers} workers, ${c.primaries} primaries x ` +
      `${c.replicasPerPrimary} replica (node timeout ${c.nodeTimeoutMs} ms, persistence ${c.persistence}); LEADER_NAME ${result.leaderName}`,
  );
  for (const fault of a.faults) {
    const takeover =
      fault.newLeaderAfterMs === undefined
        ? 'no new leader'
        : `new leader after ${ms(fault.newLeaderAfterMs)}, processing after ${ms(fault.processingAfterMs)}`;
    row('fault', seconds(fault.atOffsetMs), `${fault.name}: ${fault.detail}; ${takeover}`);
  }
  row('generated', n(a.generated), `${n(a.setFailures)} SETs failed`);
  row(
    'published',
    n(a.published),
    `unpublished: ${n(a.unpublished.faultedPrimary)} of a faulted primary, ${n(a.unpublished.other)} other; republished ${n(a.republished)}`,
  );
  row(
    'excluded',
    n(a.excluded.primaryDown + a.excluded.unsubscribed),
    `primary down at expiry ${n(a.excluded.primaryDown)}, no worker subscribed ${n(a.excluded.unsubscribed)} (processed anyway ${n(a.excludedProcessed)})`,
  );
  row('expected', n(a.expected));
  row('processed', n(a.processed), `unique expected keys handled; ${n(a.replayed)} calls were replays`);
  row(
    'lost',
    n(a.lost),
    `missing ${n(a.missing)} (expected - processed) - shed ${n(a.shedDropped)} - failed calls ${n(a.failedUnprocessed)}`,
  );
  if (a.shed > 0 || result.backpressure) {
    row(
      'shed',
      n(a.shed),
      Object.entries(a.shedByReason)
        .map(([reason, count]) => `${reason} ${n(count)}`)
        .join(', '),
    );
  }
  row(
    'duplicates',
    n(a.duplicates),
    `handler calls beyond one per publication of the key (${n(a.handlerCalls)} calls; ${n(a.duplicatesAfterMark)} handled by a stopped leader after its last mark; excluded keys ${n(a.duplicatesExcluded)})`,
  );
  row('max delay', ms(a.maxDelayMs), `publication -> first key.processed, a key of ${a.maxDelayNode ?? '-'}`);
  for (const [name, value] of Object.entries(result.measurements)) row(name, n(Math.round(value)));
  row(
    'ids naming two keys',
    n(a.idsNamingTwoKeys),
    a.idsNamingTwoKeys === 0
      ? 'event ids carried by calls of different keys'
      : a.idsNamingTwoKeysSample.slice(0, 3).join('; '),
  );
  row(
    'longest gap',
    ms(a.longestGapMs),
    `without a key.processed, from ${seconds(a.longestGapStartOffsetMs)}`,
  );
  row('leader changes', n(a.leaderChanges), `tokens ${a.fencingTokens.join(' -> ') || '-'}`);
  row('fencing order', a.fencing.ok ? 'OK' : 'VIOLATED', a.fencing.ok ? '' : (a.fencing.example ?? ''));
  for (const paused of a.pausedLeaders) {
    row(
      'paused leader',
      paused.processedAfterResume === 0 ? 'idle' : 'ACTIVE',
      `${paused.workerId} (token ${paused.fencingToken}) paused ${ms(paused.pausedMs)}: ${paused.processedAfterResume} calls with that token started after SIGCONT, ${paused.inFlightAtPause} running when frozen`,
    );
  }
  if (a.handlerFailures > 0) row('handler failures', n(a.handlerFailures));
  if (a.subscriptionDowns > 0)
    row('subscription.down', n(a.subscriptionDowns), '(not counting shutdown/removed)');
  const bp = result.backpressure;
  if (bp) {
    row(
      'leader RSS',
      bp.rssAtFirstShedKb === undefined ? '-' : `${n(bp.rssAtFirstShedKb)} kB`,
      `at the first shed; max after ${bp.maxRssAfterShedKb === undefined ? '-' : `${n(bp.maxRssAfterShedKb)} kB`}, max overall ${bp.maxRssKb === undefined ? '-' : `${n(bp.maxRssKb)} kB`}`,
    );
    row(
      'subscribers',
      bp.subscribersAtEnd.join('/') || '-',
      `per primary at the end for ${bp.liveWorkersAtEnd} workers; max omem ${bp.maxSubscriberOmem ?? '-'} B; output-buffer disconnects ${bp.outputBufferDisconnects}`,
    );
  }
  if (a.missing > 0) {
    row(
      'missing published',
      '',
      `while no worker led ${n(a.missingWhen.noLeader)}, while the leader was not subscribed to the primary ${n(a.missingWhen.leaderUnsubscribed)}, while it led and was subscribed ${n(a.missingWhen.leaderSubscribed)}`,
    );
    row('missing (first)', '', a.missingSample.slice(0, 5).join(' '));
  }
  lines.push('  guarantees:');
  for (const verdict of result.verdicts) {
    lines.push(`    ${verdict.ok ? 'PASS' : 'FAIL'} ${verdict.name}: ${verdict.detail}`);
  }
  lines.push(
    `  ${result.ok ? 'ALL GUARANTEES HELD' : 'SOME GUARANTEES FAILED'} (${(result.elapsedMs / 1000).toFixed(1)} s)`,
  );
  return lines;
}

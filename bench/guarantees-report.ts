import { CRASH_LOSS_SHARE_OF_MAX, percentChange } from './analysis.ts';
import type { FixedStepResult, WorkerUsage } from './fixed-step.ts';
import {
  type CostVariant,
  type CrashLossRate,
  type ResourcesVariant,
  RSS_GOAL_MIB,
  RSS_GOAL_VARIANT,
  type ThreeWorkersReport,
} from './guarantees.ts';
import { int, ms, pct, table } from './markdown.ts';

/** Report sections of bench/guarantees.ts. Pure. */

const pair = (v: { median: number; worst: number }, unit = ''): string =>
  `${int(v.median)}${unit} / ${int(v.worst)}${unit}`;
const mib = (kib: number | undefined): string => (kib === undefined ? '-' : `${(kib / 1024).toFixed(0)} MiB`);
const signed = (value: number, digits = 0): string =>
  Number.isNaN(value) ? '-' : `${value >= 0 ? '+' : ''}${value.toFixed(digits)}%`;

/** "6,400/s (80 % of 8,000/s sustained)" for the rate taken from the measured maximum. */
function rateLabel(r: CrashLossRate): string {
  return r.measuredMaxPerSecond === undefined
    ? `${int(r.keysPerSecond)}/s`
    : `${int(r.keysPerSecond)}/s (${Math.round(CRASH_LOSS_SHARE_OF_MAX * 100)} % of ${int(r.measuredMaxPerSecond)}/s sustained)`;
}

export function crashLossLines(rates: readonly CrashLossRate[]): string[] {
  const first = rates[0];
  if (!first) return [];
  const rows = rates.map((r) => [
    r.algorithm === 'seed' ? 'seed (baseline)' : r.algorithm,
    rateLabel(r),
    String(r.runs.length),
    pair(r.expected),
    pair(r.lost),
    pair(r.duplicates),
    pair(r.gapMs, ' ms'),
    r.runs.some((run) => run.catchUpMs !== undefined) ? pair(r.catchUpMs, ' ms') : '-',
    `${r.wonByReplacement} of ${r.runs.length}`,
  ]);
  return [
    '## Crash loss: events lost and handled twice when the leader is killed (SIGKILL)',
    '',
    `${first.runs.length > 0 ? '' : 'No run completed. '}3 workers (HANDLER=log, LOG_LEVEL=info; default lease and replay settings), ` +
      'keys with a 1 s TTL at the rate shown; the leader gets SIGKILL, a replacement worker starts 1 s after it ' +
      'exits (as ECS would), and the next run waits until three workers are up again. Same hand-over machinery ' +
      'as the section "Hand-over", crash runs only, both algorithms in the same run of the bench. Figures are ' +
      'per run: median / worst over the runs.',
    '',
    ...table(
      [
        'algorithm',
        'rate',
        'runs',
        'events in the fault window',
        'lost',
        'duplicates',
        'without a leader',
        'window handled after',
        'new leader was the replacement',
      ],
      rows,
    ),
    '',
    '- fault window: from 1 s before the SIGKILL to 1 s after the new leader\'s `leader.acquired`; "events in the ' +
      'fault window" are the keys the bare subscribers received in it (the expected events).',
    "- lost: expected keys for which no worker wrote a `key.processed` line, counted once the new leader's " +
      'replay of the window was over: TTL + 2 s after the acquisition, then as long as the unprocessed count ' +
      'kept falling (it stood still 2 s), at most 30 s.',
    "- window handled after: the new leader's acquisition to the arrival of the last expected key's " +
      '`key.processed` line (runs that handled all of them): how late the last replayed event was.',
    `- a rate marked "% of ... sustained" is ${Math.round(CRASH_LOSS_SHARE_OF_MAX * 100)} % of the highest step the ` +
      'three workers sustained in the section "Three workers" of the same run (issue 11, sequence 3: 0 lost up to that share).',
    '- duplicates: handler calls beyond the first, summed over the expected keys (a key handled twice counts 1).',
    "- without a leader: the SIGKILL (stamped by the bench) to the new leader's `leader.acquired`.",
    '- keyspace-leader replays from the processed marks only when the new leader is a warm follower (its ' +
      'replay window holds the gap); a replacement started after the kill has an empty window, so the ' +
      'events published before it subscribed are lost (README, "Delivery guarantees": covered while at least ' +
      'one healthy follower remains). The last column says how often that happened.',
    '',
  ];
}

function leaderUsage(step: FixedStepResult): WorkerUsage | undefined {
  return step.usage.find((u) => u.role === 'leader');
}

export function costLines(variants: readonly CostVariant[]): string[] {
  const first = variants[0];
  if (!first) return [];
  const base = variants.find((v) => v.variant === 'replay off');
  const rows = variants.map((v) => {
    const s = v.step;
    const leader = leaderUsage(s);
    return [
      v.variant,
      Object.entries(v.env)
        .map(([k, value]) => `${k}=${value}`)
        .join(' '),
      `${int(s.generated / s.durationS)}/s`,
      `${int(s.expected / s.durationS)}/s`,
      `${int(s.fanIn.matched / s.durationS)}/s`,
      pct(s.fanIn.ratio),
      `${ms(s.fanIn.addedMs?.p50)} / ${ms(s.fanIn.addedMs?.p99)}`,
      ms(s.fanIn.workerLatencyMs?.p99),
      leader ? ms(leader.cpuMsPerThousandEvents) : '-',
      leader ? `${mib(leader.rssBeforeKiB)} -> ${mib(leader.rssAfterKiB)}` : '-',
      s.verdict,
    ];
  });
  const lines = [
    `## Cost of the guarantees: one leader, ${int(first.step.keysPerSecond)} expirations/s for ${first.step.durationS} s per variant`,
    '',
    'One fresh worker per variant (the leader alone, as in "Fan-in"), LOG_LEVEL=info, so every handled event ' +
      'is counted per key from its `key.processed` line. Replay on: the default (REPLAY_WINDOW_MS 15 s, processed ' +
      'marks every 10 ms); replay off: REPLAY_WINDOW_MS=0 (the same path, a follower keeps nothing); stream handler: HANDLER=stream ' +
      '(each event appended to the outbox streams in the same cluster; replay on).',
    '',
    ...table(
      [
        'variant',
        'worker env',
        'keys set',
        'bare received',
        'processed',
        'processed/received',
        'added p50 / p99 (upper bound)',
        "worker's own p99",
        'leader CPU per 1,000 events',
        'leader RSS before -> after',
        'verdict',
      ],
      rows,
    ),
    '',
  ];
  if (base) {
    const baseLeader = leaderUsage(base.step);
    for (const v of variants) {
      if (v === base) continue;
      const leader = leaderUsage(v.step);
      lines.push(
        `- ${v.variant} against replay off: added latency p50 ${ms(v.step.fanIn.addedMs?.p50)} vs ${ms(base.step.fanIn.addedMs?.p50)}, ` +
          `p99 ${ms(v.step.fanIn.addedMs?.p99)} vs ${ms(base.step.fanIn.addedMs?.p99)}; leader CPU per 1,000 events ` +
          `${signed(percentChange(baseLeader?.cpuMsPerThousandEvents ?? Number.NaN, leader?.cpuMsPerThousandEvents ?? Number.NaN))}.`,
      );
    }
    lines.push('');
  }
  lines.push(
    'Throughput is the rate of the step when "processed/received" is ~100%: the step shows whether the variant ' +
      'keeps up at this rate, not its ceiling (see "Highest sustained rate" and "Three workers"). The verdict is ' +
      'the rule of "Highest sustained rate". CPU per 1,000 events: utime + stime of the worker from the first key ' +
      'to TTL + 2 s after the last, divided by the events the bare subscribers received.',
    '',
  );
  return lines;
}

function usageRows(variant: string, step: FixedStepResult): string[][] {
  return step.usage.map((u) => [
    variant,
    u.id,
    u.role,
    ms(u.cpuMsPerThousandEvents),
    `${u.cpuSeconds.toFixed(2)} s`,
    mib(u.rssBeforeKiB),
    mib(u.rssAfterKiB),
    u.rssBeforeKiB !== undefined && u.rssAfterKiB !== undefined
      ? `${((u.rssAfterKiB - u.rssBeforeKiB) / 1024).toFixed(1)} MiB`
      : '-',
  ]);
}

export function resourcesLines(variants: readonly ResourcesVariant[]): string[] {
  const first = variants[0];
  if (!first) return [];
  return [
    `## Resources: worker CPU and memory per 1,000 events (${first.step.workers} workers, ${int(first.step.keysPerSecond)}/s for ${first.step.durationS} s)`,
    '',
    `${first.step.workers} workers per variant (one leader, the others followers), HANDLER=log, LOG_LEVEL=info. ` +
      'Sampled from /proc/<pid>/stat (utime + stime) and /proc/<pid>/status (VmRSS) 1 s after the group was ' +
      'stable (before the first key) and TTL + 2 s after the last key; CPU per 1,000 events divides by the events ' +
      'the bare subscribers received in the step, so it includes the idle work of the window (lease renewals, ' +
      'topology syncs, mark writes) and falls as the rate rises. A follower receives every event too: with replay ' +
      'on it keeps them in its window (REPLAY_WINDOW_MS, 15 s). RSS is one sample each time: garbage collection ' +
      'after start-up can make it shrink, so read it as a level, not a precise growth.',
    '',
    ...table(
      [
        'variant',
        'worker',
        'role',
        'CPU per 1,000 events',
        'CPU total',
        'RSS before',
        'RSS after',
        'RSS growth',
      ],
      variants.flatMap((v) => usageRows(v.variant, v.step)),
    ),
    '',
    ...variants.map(
      (v) =>
        `- ${v.variant} (${v.step.workers} worker${v.step.workers === 1 ? '' : 's'}, ${int(v.step.keysPerSecond)}/s): ` +
        `processed ${int(v.step.fanIn.matched)} of ${int(v.step.expected)} (${pct(v.step.fanIn.ratio)}), ` +
        `added p99 ${ms(v.step.fanIn.addedMs?.p99)}, bench process ${v.step.benchCpuPercent.toFixed(0)}% of one core.`,
    ),
    ...rssGoalLines(variants),
    '',
  ];
}

/** Issue 12's memory goal, from the variant that measures it: the leader's RSS at 20,000/s. */
export function rssGoalLines(variants: readonly ResourcesVariant[]): string[] {
  const variant = variants.find((v) => v.variant === RSS_GOAL_VARIANT);
  const leader = variant?.step.usage.find((u) => u.role === 'leader');
  if (!variant || !leader) return [];
  const rssMiB = Math.max(leader.rssBeforeKiB ?? 0, leader.rssAfterKiB ?? 0) / 1024;
  const met = rssMiB <= RSS_GOAL_MIB && variant.step.verdict === 'sustained';
  return [
    `- **RSS goal** (leader at ${int(variant.step.keysPerSecond)}/s <= ${RSS_GOAL_MIB} MiB): ${Math.round(rssMiB)} MiB, ` +
      `${variant.step.verdict} -> ${met ? 'met' : 'NOT met'}.`,
  ];
}

export function threeWorkersLines(report: ThreeWorkersReport, stepS: number): string[] {
  const best = report.steps.find((s) => s.keysPerSecond === report.sustainedPerSecond);
  const follower = (s: FixedStepResult) => {
    const f = s.usage.filter((u) => u.role === 'follower');
    return f.length === 0 ? Number.NaN : f.reduce((a, u) => a + u.cpuMsPerThousandEvents, 0) / f.length;
  };
  return [
    '## Three workers: highest sustained rate and the ratio to the bare subscribers',
    '',
    `Steps of ${stepS} s at rising rates, a fresh group of 3 workers per step (one leader, two followers, all on ` +
      'this machine with the cluster and the bench), HANDLER=log, LOG_LEVEL=info, default replay settings. Same ' +
      'verdict rule as "Highest sustained rate"; stepping stops at the first step not sustained. Read the added ' +
      'latency with the verdict: a step is sustained when the leader processed >= 99% and its delay did not double ' +
      'within the step, so a backlog that settles at a high level (hundreds of ms) still passes.',
    '',
    best
      ? `Highest sustained with all three workers running: **${int(best.keysPerSecond)}/s**; there the leader processed ` +
        `${int(best.fanIn.matched)} of the ${int(best.expected)} events the bare subscribers received ` +
        `(ratio ${pct(best.fanIn.ratio, 3)}), duplicates ${int(best.fanIn.duplicates)}, added latency p50 / p99 ` +
        `${ms(best.fanIn.addedMs?.p50)} / ${ms(best.fanIn.addedMs?.p99)}.`
      : 'No step was sustained.',
    '',
    ...table(
      [
        'target',
        'keys set',
        'bare received',
        'processed',
        'processed/received',
        'added p50 / p99',
        'leader CPU per 1,000',
        'follower CPU per 1,000 (mean)',
        'verdict',
      ],
      report.steps.map((s) => [
        `${int(s.keysPerSecond)}/s`,
        `${int(s.generated / s.durationS)}/s`,
        `${int(s.expected / s.durationS)}/s`,
        `${int(s.fanIn.matched / s.durationS)}/s`,
        pct(s.fanIn.ratio),
        `${ms(s.fanIn.addedMs?.p50)} / ${ms(s.fanIn.addedMs?.p99)}`,
        ms(leaderUsage(s)?.cpuMsPerThousandEvents),
        ms(follower(s)),
        `${s.verdict}${s.verdict === 'sustained' ? '' : ` (${s.reason})`}`,
      ]),
    ),
    '',
  ];
}

export function guaranteesConsole(r: {
  readonly crashLoss?: readonly CrashLossRate[] | undefined;
  readonly cost?: readonly CostVariant[] | undefined;
  readonly threeWorkers?: ThreeWorkersReport | undefined;
}): [string, string][] {
  const rows: [string, string][] = [];
  for (const c of r.crashLoss ?? []) {
    rows.push([
      `crash loss ${rateLabel(c)} (${c.algorithm})`,
      `lost median ${int(c.lost.median)} worst ${int(c.lost.worst)}, duplicates median ${int(c.duplicates.median)} worst ${int(c.duplicates.worst)}`,
    ]);
  }
  for (const v of r.cost ?? []) {
    rows.push([
      `cost: ${v.variant}`,
      `${pct(v.step.fanIn.ratio)} processed, added p99 ${ms(v.step.fanIn.addedMs?.p99)}, leader ${ms(leaderUsage(v.step)?.cpuMsPerThousandEvents)} CPU/1,000`,
    ]);
  }
  if (r.threeWorkers) {
    rows.push([
      'three workers: highest sustained',
      r.threeWorkers.sustainedPerSecond === undefined
        ? 'none'
        : `${int(r.threeWorkers.sustainedPerSecond)}/s`,
    ]);
  }
  return rows;
}

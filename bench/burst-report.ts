import type { BurstVariant } from './burst.ts';
import { int, table } from './markdown.ts';

/** Report section and console rows of bench/burst.ts. Pure. */

/** Issue 12's goal: the no-op worker drains a burst within this factor of the bare subscribers' time. */
export const BURST_DRAIN_GOAL_FACTOR = 1.1;

const msText = (value: number | undefined): string =>
  value === undefined ? '-' : `${int(Math.round(value))} ms`;

function drainRatio(v: BurstVariant): number | undefined {
  if (v.workerDrainMs === undefined || v.bareDrainMs === undefined || v.bareDrainMs <= 0) return undefined;
  return v.workerDrainMs / v.bareDrainMs;
}

export function burstLines(variants: readonly BurstVariant[]): string[] {
  const first = variants[0];
  if (!first) return [];
  const rows = variants.map((v) => {
    const ratio = drainRatio(v);
    return [
      v.variant,
      `${int(v.bareReceived)} of ${int(v.set)}`,
      msText(v.bareDrainMs),
      `${int(v.handled)}`,
      msText(v.workerDrainMs),
      ratio === undefined ? '-' : `${ratio.toFixed(2)}x`,
      int(v.shed),
      `${int(v.renewals)}: p99 ${msText(v.renewLatencyP99Ms)}, max ${msText(v.renewLatencyMaxMs)}`,
      int(v.leadershipLost),
    ];
  });
  const noop = variants.find((v) => v.variant === 'no-op');
  const noopRatio = noop ? drainRatio(noop) : undefined;
  const met =
    noop !== undefined &&
    noop.handled >= noop.bareReceived &&
    noopRatio !== undefined &&
    noopRatio <= BURST_DRAIN_GOAL_FACTOR &&
    variants.every((v) => v.leadershipLost === 0 && v.handled >= v.bareReceived);
  return [
    `## Burst: ${int(first.keys)} keys sharing one deadline`,
    '',
    'One worker (it leads alone), keys set with `SET k 1 PXAT <deadline>` ahead of one shared deadline (a batch ' +
      'of sessions created together). `no-op`: a handler that counts its calls (LOG_LEVEL=warn, no line per ' +
      'event); `log`: HANDLER=log, one `key.processed` line per event. Drain: the deadline to the last event ' +
      "the bare subscribers received / the worker handled. Renewals: the leader's `LeaseRenewLatencyMs` (a " +
      "renewal's due time to its confirmation) over the whole run, and its `leader.lost` lines during the burst.",
    '',
    ...table(
      [
        'handler',
        'bare subscribers received',
        'bare drain',
        'worker handled',
        'worker drain',
        'worker / bare',
        'shed',
        'renewals',
        'leadership lost',
      ],
      rows,
    ),
    '',
    `Goal (issue 12): all handled, the no-op worker's drain within ${BURST_DRAIN_GOAL_FACTOR}x the bare ` +
      `subscribers', no renewal missing its deadline: **${met ? 'met' : 'NOT met'}**.`,
    '',
  ];
}

export function burstConsole(variants: readonly BurstVariant[]): [string, string][] {
  return variants.map((v) => {
    const ratio = drainRatio(v);
    return [
      `burst ${int(v.keys)} (${v.variant})`,
      `handled ${int(v.handled)} of ${int(v.bareReceived)} in ${msText(v.workerDrainMs)} (bare ${msText(v.bareDrainMs)}` +
        `${ratio === undefined ? '' : `, ${ratio.toFixed(2)}x`}), shed ${int(v.shed)}, renew max ${msText(v.renewLatencyMaxMs)}, ` +
        `leadership lost ${int(v.leadershipLost)}`,
    ];
  });
}

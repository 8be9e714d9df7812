import type { ChaosAccount } from './chaos-accounting.ts';

/**
 * What each scenario promises, and the verdict on one run (pure). The integration tests assert the
 * same figures one by one; the CLI prints these verdicts and exits 1 when one fails.
 */

export interface GuaranteeExpectations {
  /**
   * `no-loss`: every expected key processed (shed does not excuse a loss); `shed-accounts`: every
   * unprocessed key is counted as shed or as a failed call, and something was shed (the queue really
   * overflowed).
   */
  readonly loss: 'no-loss' | 'shed-accounts';
  /** `handover`: at most max(2, 0.1% of expected); `steady`: none. */
  readonly duplicates: 'handover' | 'steady';
  /** The fault must move leadership (a `leader.acquired` with a higher token after it). */
  readonly leaderChange: boolean;
  /** A paused leader resumed: none of its old token's calls after SIGCONT. */
  readonly pausedLeaderIdle: boolean;
  /** The harness must have seen every key it set published (no primary was faulted). */
  readonly allPublished: boolean;
  /**
   * Seconds' worth of keys (at the run's rate) that may be published while no worker is subscribed
   * to the publishing primary: 0 unless the topology changes (a new primary is subscribed within 5 s,
   * docs/worker.md).
   */
  readonly unsubscribedSeconds: number;
}

export interface BackpressureFigures {
  /** The leader's RSS (kB) when the first `events.shed` was seen, and its maximum afterwards. */
  readonly rssAtFirstShedKb: number | undefined;
  readonly maxRssAfterShedKb: number | undefined;
  readonly maxRssKb: number | undefined;
  /** Redis log lines "scheduled to be closed ASAP for overcoming of output buffer limits". */
  readonly outputBufferDisconnects: number;
  /** Largest `omem` (bytes) of a worker subscriber connection in CLIENT LIST. */
  readonly maxSubscriberOmem: number | undefined;
  /** Per primary: worker subscriber connections at the last CLIENT LIST before the workers stopped. */
  readonly subscribersAtEnd: readonly number[];
  readonly liveWorkersAtEnd: number;
}

export interface BackpressureBounds {
  /** RSS may grow at most this much after the queue first overflowed. */
  readonly maxRssGrowthAfterShedKb: number;
  readonly maxRssKb: number;
}

export const DEFAULT_BACKPRESSURE_BOUNDS: BackpressureBounds = {
  maxRssGrowthAfterShedKb: 128 * 1024,
  maxRssKb: 768 * 1024,
};

export interface Verdict {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** The duplicate bound of a hand-over: max(2, 0.1% of the expected keys). */
export function handoverDuplicateBound(expected: number): number {
  return Math.max(2, Math.floor(expected * 0.001));
}

/**
 * Sanity bound on the duplicates explained by a stopped leader's last mark: at most this much of the
 * run's rate. The mark is written every 10 ms; a write waits for the one in flight, so on a loaded
 * 2-core machine the last mark can trail the handled events by a round trip and a scheduling delay,
 * never by anything near this.
 */
export const MARK_LAG_SANITY_MS = 500;

/**
 * Calls a frozen leader had running may complete after it resumes: at most HANDLER_CONCURRENCY, whose
 * default (16) the chaos fleet runs with.
 */
export const PAUSED_IN_FLIGHT_BOUND = 16;

export function evaluateGuarantees(
  account: ChaosAccount,
  expectations: GuaranteeExpectations,
  context: { rate: number; backpressure?: { figures: BackpressureFigures; bounds: BackpressureBounds } },
): Verdict[] {
  const { backpressure } = context;
  const verdicts: Verdict[] = [];
  const add = (name: string, ok: boolean, detail: string) => verdicts.push({ name, ok, detail });

  add('keys flowed', account.expected > 0, `${account.expected} expected keys`);
  if (expectations.loss === 'no-loss') {
    add(
      'no loss',
      account.missing === 0,
      `${account.missing} expected keys never processed (shed ${account.shed})`,
    );
  } else {
    add(
      'every loss is accounted for',
      account.missing === account.shedDropped + account.failedUnprocessed && account.shedDropped > 0,
      `unprocessed ${account.missing} = shed ${account.shedDropped} (queue-full, backlog-full, shutdown) + failed calls ${account.failedUnprocessed}`,
    );
  }
  const bound = expectations.duplicates === 'handover' ? handoverDuplicateBound(account.expected) : 0;
  // A crash replays what the stopped leader handled after its last mark: those duplicates are the
  // documented ones (docs/chaos.md); every other duplicate must stay within the bound.
  const afterMarkBound =
    expectations.duplicates === 'handover' ? Math.ceil((context.rate * MARK_LAG_SANITY_MS) / 1000) : 0;
  const otherDuplicates = account.duplicates - account.duplicatesAfterMark;
  add(
    'duplicates',
    otherDuplicates <= bound && account.duplicatesAfterMark <= afterMarkBound,
    `${account.duplicates}: ${account.duplicatesAfterMark} handled by a stopped leader after its last mark ` +
      `(bound ${afterMarkBound}), ${otherDuplicates} other (bound ${bound})`,
  );
  add(
    'ids naming two keys',
    account.idsNamingTwoKeys === 0,
    account.idsNamingTwoKeys === 0
      ? '0'
      : `${account.idsNamingTwoKeys}, e.g. ${account.idsNamingTwoKeysSample.slice(0, 3).join('; ')}`,
  );
  add(
    'fencing order',
    account.fencing.ok,
    account.fencing.example ?? `${account.fencing.violations} violations`,
  );
  add(
    'coverage',
    account.coverageViolations.length === 0,
    account.coverageViolations.length === 0
      ? 'every leader was subscribed to every primary it knew'
      : account.coverageViolations
          .map(
            (v) =>
              `${v.workerId} took the lease with ${v.subscribed}/${v.known} while ${v.coveredPeers.join(',')} covered all`,
          )
          .join('; '),
  );
  add(
    'no worker crashed',
    account.unexpectedExits.length === 0,
    account.unexpectedExits.length === 0 ? 'none' : account.unexpectedExits.join('; '),
  );
  const unsubscribedBound = Math.ceil(context.rate * expectations.unsubscribedSeconds);
  add(
    'workers subscribed',
    account.excluded.unsubscribed <= unsubscribedBound,
    `${account.excluded.unsubscribed} keys published while no worker was subscribed to their primary (bound ${unsubscribedBound})`,
  );
  if (expectations.leaderChange) {
    const moved = account.faults.some((f) => f.newLeaderAfterMs !== undefined);
    add(
      'leadership moved',
      moved,
      moved ? 'a new leader took over' : 'no leader.acquired with a higher token after the fault',
    );
  }
  if (expectations.pausedLeaderIdle) {
    const checks = account.pausedLeaders;
    const after = checks.reduce((sum, c) => sum + c.processedAfterResume, 0);
    const inFlight = Math.max(0, ...checks.map((c) => c.inFlightAtPause));
    add(
      'paused leader idle after resume',
      checks.length > 0 && after === 0 && inFlight <= PAUSED_IN_FLIGHT_BOUND,
      checks.length === 0
        ? 'no paused leader observed'
        : `${after} calls with the old token started after SIGCONT; ${inFlight} running when frozen completed after it (bound ${PAUSED_IN_FLIGHT_BOUND})`,
    );
  }
  if (expectations.allPublished) {
    add(
      'every key published',
      account.unpublished.other === 0 && account.unpublished.faultedPrimary === 0,
      `${account.unpublished.other + account.unpublished.faultedPrimary} set but never seen by a reference subscriber`,
    );
  }
  if (backpressure) {
    const { figures, bounds } = backpressure;
    const growth =
      figures.rssAtFirstShedKb !== undefined && figures.maxRssAfterShedKb !== undefined
        ? figures.maxRssAfterShedKb - figures.rssAtFirstShedKb
        : undefined;
    add(
      'memory bounded',
      growth !== undefined &&
        growth <= bounds.maxRssGrowthAfterShedKb &&
        (figures.maxRssKb ?? Number.POSITIVE_INFINITY) <= bounds.maxRssKb,
      growth === undefined
        ? 'no RSS sample after the first shed'
        : `leader RSS ${figures.rssAtFirstShedKb} kB at the first shed, max ${figures.maxRssAfterShedKb} kB after (+${growth} kB), max overall ${figures.maxRssKb} kB`,
    );
    const subscribed = figures.subscribersAtEnd.every((n) => n >= figures.liveWorkersAtEnd);
    add(
      'subscribers never cut off',
      figures.outputBufferDisconnects === 0 && account.subscriptionDowns === 0 && subscribed,
      `${figures.outputBufferDisconnects} output-buffer disconnects, ${account.subscriptionDowns} subscription.down, ` +
        `subscriber connections per primary at the end ${figures.subscribersAtEnd.join('/')} for ${figures.liveWorkersAtEnd} workers, ` +
        `max omem ${figures.maxSubscriberOmem ?? '-'} B`,
    );
  }
  return verdicts;
}

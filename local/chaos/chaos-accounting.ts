import type { LogEventName, LogLine } from '../../core/log-events.ts';
/**
 * The figures of one chaos run, computed after the fact from what was observed outside the workers:
 * the keys the generator set, the `expired` events the reference subscribers received (one bare
 * subscriber per primary), the workers' JSON log lines, the signals the harness sent and the outages
 * it caused. Pure: every input carries its wall-clock time (ms), so unit tests drive it directly.
 *
 * Definitions (docs/chaos.md explains why):
 * - published: tracked keys whose `expired` event a reference subscriber received.
 * - excluded: published keys the workers could not have received, reported apart and not expected:
 *   `primaryDown` -- the key's primary (its slot owner when the key was set) was down at the key's
 *   deadline (set time + TTL), within `outageMarginMs` of the outage; `unsubscribed` -- when the
 *   reference received the event, no live worker had held a confirmed subscription to the publishing
 *   primary for at least `subscriptionToleranceMs` (pub/sub is fire-and-forget: no replay can help).
 * - expected = published - excluded. processed = expected keys with at least one `key.processed`.
 * - missing = expected - processed; shed = sum of `events.shed` counts; shedDropped = the shed of
 *   reasons that drop an event the leader was to handle (all but a follower's `replay-window-full`);
 *   failedUnprocessed = missing keys with a `handler.failed` line (the call happened and failed);
 *   lost = max(0, missing - failedUnprocessed - shedDropped): what nothing accounts for. Scenarios
 *   without overload require missing = 0 outright.
 * - duplicates: handler calls beyond one per publication of the key (keys outside the excluded set): a
 *   key Redis published twice (a primary restarted from its AOF restored it, and it expired again) is
 *   two expiries, each owed a call.
 * - delay: per expected processed key, its first `key.processed` minus its first publication; the
 *   largest (`maxDelayMs`) and the publishing node of that key.
 * - ids naming two keys: `eventId`s (`<nodeId>:<seq>`, from `key.processed`) carried by calls of two
 *   or more different keys. Downstreams drop duplicates by id, so such an id drops a new expiration
 *   silently: must be 0 in every scenario. The same key under two ids is a duplicate, not counted here.
 * - longest gap: the longest interval between consecutive `key.processed` lines (their `time`, any
 *   worker) within [first publication, last publication] -- the window in which keys kept expiring --
 *   counting the window's edges as boundaries.
 * - fencing: ordered by `time`, a `key.processed` whose token is lower than a token processed at a
 *   strictly earlier millisecond is a violation (lines of the same millisecond cannot be ordered).
 * - coverage: a `leader.acquired` by a worker not subscribed to every primary it knew, while another
 *   live, running worker was, is a violation.
 */

export interface GeneratedKey {
  readonly key: string;
  /** When the SET was acknowledged. */
  readonly setAtMs: number;
  /** `host:port` of the primary that owned the key's slot when it was set (as last polled). */
  readonly owner: string | undefined;
}

export interface Publication {
  readonly key: string;
  /** `host:port` of the publishing primary. */
  readonly node: string;
  readonly atMs: number;
}

/**
 * One worker log line, decoded by core/log-decoder.ts; `atMs` is its `time` field, `workerId` the
 * fleet's name of the process, `fields` the decoded line (narrowed by `event`).
 */
export type WorkerRecord = {
  readonly [E in LogEventName]: {
    readonly workerId: string;
    readonly atMs: number;
    readonly event: E;
    readonly fields: LogLine<E>;
  };
}[LogEventName];

/** The records of one event. */
export type WorkerRecordOf<E extends LogEventName> = Extract<WorkerRecord, { readonly event: E }>;

/** A filter narrowing records to one event. */
export function ofEvent<E extends LogEventName>(
  event: E,
): (record: WorkerRecord) => record is WorkerRecordOf<E> {
  return (record): record is WorkerRecordOf<E> => record.event === event;
}

export type LifecycleKind = 'spawned' | 'signalled' | 'exited';

export interface LifecycleEvent {
  readonly workerId: string;
  readonly kind: LifecycleKind;
  readonly atMs: number;
  /** The signal sent (`signalled`) or the one the process died of (`exited`). */
  readonly signal?: string | undefined;
  readonly code?: number | null | undefined;
}

/** A primary that was down (killed, stopped) from `fromMs` until the cluster served its slots again. */
export interface PrimaryOutage {
  readonly node: string;
  readonly fromMs: number;
  readonly toMs: number;
}

export interface FaultMark {
  readonly name: string;
  readonly atMs: number;
  readonly detail: string;
}

/**
 * The processed marks a frozen or killed leader left in Redis, read by the harness before a successor
 * could write: `seqByNode` is, per primary node id, the sequence number its newest mark copy records.
 */
export interface MarkSnapshot {
  readonly fencingToken: number;
  readonly atMs: number;
  readonly seqByNode: Readonly<Record<string, number>>;
}

export interface ChaosObservations {
  readonly trackedPrefix: string;
  readonly ttlMs: number;
  /** When the generator started and stopped. */
  readonly generatorStartMs: number;
  readonly generatorStopMs: number;
  /**
   * When the harness began stopping every worker (end of the run): a `leader.acquired` from then on
   * (a follower taking the lease the stopping leader released) is no leadership change of the run.
   */
  readonly workersStopMs?: number;
  readonly generated: readonly GeneratedKey[];
  readonly setFailures: number;
  readonly publications: readonly Publication[];
  readonly records: readonly WorkerRecord[];
  readonly lifecycle: readonly LifecycleEvent[];
  readonly outages: readonly PrimaryOutage[];
  readonly faults: readonly FaultMark[];
  readonly markSnapshots?: readonly MarkSnapshot[];
}

export interface AccountingOptions {
  /** Widens each outage on both sides for the primaryDown exclusion (expiry delivery delay). */
  readonly outageMarginMs?: number;
  /** A subscription counts only when confirmed this long before the reference saw the event. */
  readonly subscriptionToleranceMs?: number;
}

export interface FaultOutcome {
  readonly name: string;
  readonly detail: string;
  /** Since the generator started. */
  readonly atOffsetMs: number;
  /** From the fault to the first `leader.acquired` with a higher token; undefined when none. */
  readonly newLeaderAfterMs: number | undefined;
  /** From the fault to the first `key.processed` under that new token. */
  readonly processingAfterMs: number | undefined;
}

export interface FencingCheck {
  readonly ok: boolean;
  readonly violations: number;
  readonly example: string | undefined;
}

export interface PausedLeaderCheck {
  readonly workerId: string;
  readonly fencingToken: number;
  readonly pausedMs: number;
  /** Calls of that worker with its old token that STARTED after SIGCONT (`handlerMs`): must be 0. */
  readonly processedAfterResume: number;
  /**
   * Calls with the old token that were running when the worker was frozen and completed after
   * SIGCONT: at most HANDLER_CONCURRENCY (what `ctx.leaseValid()` is for; README, handlers).
   */
  readonly inFlightAtPause: number;
}

export interface CoverageViolation {
  readonly workerId: string;
  readonly atOffsetMs: number;
  readonly subscribed: number;
  readonly known: number;
  readonly coveredPeers: readonly string[];
}

export interface ChaosAccount {
  readonly generated: number;
  readonly setFailures: number;
  readonly published: number;
  /** Keys a reference subscriber received more than once (Redis published them twice, e.g. across a failover). */
  readonly republished: number;
  readonly excluded: { readonly primaryDown: number; readonly unsubscribed: number };
  /** Excluded keys that were processed anyway. */
  readonly excludedProcessed: number;
  /** Generated keys whose event no reference subscriber received. */
  readonly unpublished: { readonly faultedPrimary: number; readonly other: number };
  readonly expected: number;
  readonly processed: number;
  /** Processed tracked keys that are not expected (excluded or never published). */
  readonly processedUnexpected: number;
  readonly missing: number;
  /** Every `events.shed` count, whatever the reason. */
  readonly shed: number;
  readonly shedByReason: Readonly<Record<string, number>>;
  /** Shed counts of reasons that drop an event the leader should have handled (all but `replay-window-full`). */
  readonly shedDropped: number;
  /** Missing keys whose handler call failed (`handler.failed`: thrown, timed out, aborted at shutdown). */
  readonly failedUnprocessed: number;
  readonly lost: number;
  readonly duplicates: number;
  /**
   * Of `duplicates`: second calls of events that a frozen or killed leader handled AFTER its last
   * processed mark (its first call's `eventId` seq is above the mark the harness read once the
   * leader stopped). Those are the documented duplicates of a crash; the rest must stay within the
   * hand-over bound.
   */
  readonly duplicatesAfterMark: number;
  readonly duplicatesExcluded: number;
  /** Event ids carried by `key.processed` lines of two or more different keys (must be 0). */
  readonly idsNamingTwoKeys: number;
  /** Up to 10 of them, `id: key1, key2`, for diagnosis. */
  readonly idsNamingTwoKeysSample: readonly string[];
  readonly handlerCalls: number;
  readonly replayed: number;
  readonly handlerFailures: number;
  /** Largest publication -> first `key.processed` of an expected key (0 when none). */
  readonly maxDelayMs: number;
  /** The publishing node of that key. */
  readonly maxDelayNode: string | undefined;
  readonly longestGapMs: number;
  /** Since the generator started. */
  readonly longestGapStartOffsetMs: number | undefined;
  readonly leaderChanges: number;
  readonly fencingTokens: readonly number[];
  readonly faults: readonly FaultOutcome[];
  readonly fencing: FencingCheck;
  readonly pausedLeaders: readonly PausedLeaderCheck[];
  readonly coverageViolations: readonly CoverageViolation[];
  /** Workers that exited without being signalled by the harness, and `worker.crashed` lines. */
  readonly unexpectedExits: readonly string[];
  readonly subscriptionDowns: number;
  /** Up to 20 missing keys, for diagnosis. */
  readonly missingSample: readonly string[];
  /**
   * Where the missing keys fell, by their publication: while no worker led; while the leader was not
   * subscribed to the publishing primary; or while it led and was subscribed.
   */
  readonly missingWhen: {
    readonly noLeader: number;
    readonly leaderUnsubscribed: number;
    readonly leaderSubscribed: number;
  };
}

const DEFAULT_OUTAGE_MARGIN_MS = 1000;
/**
 * `events.shed` reasons that do not drop an event the leader was to handle: a follower's replay window
 * pushing out old events (a later replay could miss them, but nothing is lost unless one is needed).
 */
const WINDOW_SHED_REASONS: ReadonlySet<string> = new Set(['replay-window-full']);
const DEFAULT_SUBSCRIPTION_TOLERANCE_MS = 100;

const asNumber = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;
const asText = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

interface Interval {
  readonly fromMs: number;
  toMs: number;
}

/** Per worker: intervals during which it was alive and not paused, and its subscription history. */
interface WorkerTimeline {
  spawnedAtMs: number;
  /** SIGKILL sent, or exit observed: whichever came first. */
  deadAtMs: number;
  paused: Interval[];
  /** Per node: confirmed subscription intervals. */
  subscriptions: Map<string, Interval[]>;
  /** Known primaries after each `topology.changed`, in time order. */
  topology: { atMs: number; primaries: readonly string[] | number }[];
}

function buildTimelines(
  records: readonly WorkerRecord[],
  lifecycle: readonly LifecycleEvent[],
): Map<string, WorkerTimeline> {
  const timelines = new Map<string, WorkerTimeline>();
  const timeline = (workerId: string): WorkerTimeline => {
    let found = timelines.get(workerId);
    if (!found) {
      found = {
        spawnedAtMs: Number.NEGATIVE_INFINITY,
        deadAtMs: Number.POSITIVE_INFINITY,
        paused: [],
        subscriptions: new Map(),
        topology: [],
      };
      timelines.set(workerId, found);
    }
    return found;
  };
  for (const event of [...lifecycle].sort((a, b) => a.atMs - b.atMs)) {
    const t = timeline(event.workerId);
    if (event.kind === 'spawned') t.spawnedAtMs = event.atMs;
    else if (event.kind === 'exited') t.deadAtMs = Math.min(t.deadAtMs, event.atMs);
    else if (event.signal === 'SIGKILL') t.deadAtMs = Math.min(t.deadAtMs, event.atMs);
    else if (event.signal === 'SIGSTOP')
      t.paused.push({ fromMs: event.atMs, toMs: Number.POSITIVE_INFINITY });
    else if (event.signal === 'SIGCONT') {
      const open = t.paused.at(-1);
      if (open && open.toMs === Number.POSITIVE_INFINITY) open.toMs = event.atMs;
    }
  }
  for (const record of [...records].sort((a, b) => a.atMs - b.atMs)) {
    if (
      record.event !== 'subscription.up' &&
      record.event !== 'subscription.down' &&
      record.event !== 'topology.changed'
    )
      continue;
    const t = timeline(record.workerId);
    if (record.event === 'topology.changed') {
      const primaries = record.fields.primaries;
      t.topology.push({
        atMs: record.atMs,
        primaries: Array.isArray(primaries) ? primaries.map(String) : (asNumber(primaries) ?? 0),
      });
      continue;
    }
    const node = asText(record.fields.node);
    if (node === undefined) continue;
    let intervals = t.subscriptions.get(node);
    if (!intervals) {
      intervals = [];
      t.subscriptions.set(node, intervals);
    }
    const open = intervals.at(-1);
    const isOpen = open !== undefined && open.toMs === Number.POSITIVE_INFINITY;
    if (record.event === 'subscription.up' && !isOpen) {
      intervals.push({ fromMs: record.atMs, toMs: Number.POSITIVE_INFINITY });
    } else if (record.event === 'subscription.down' && isOpen) {
      open.toMs = record.atMs;
    }
  }
  // A dead worker's subscriptions end with it.
  for (const t of timelines.values()) {
    for (const intervals of t.subscriptions.values()) {
      for (const interval of intervals) interval.toMs = Math.min(interval.toMs, t.deadAtMs);
    }
  }
  return timelines;
}

const isAlive = (t: WorkerTimeline, atMs: number) => atMs >= t.spawnedAtMs && atMs < t.deadAtMs;
const isPaused = (t: WorkerTimeline, atMs: number) => t.paused.some((p) => atMs >= p.fromMs && atMs < p.toMs);

function coverageAt(t: WorkerTimeline, atMs: number): { subscribed: number; known: number } {
  const subscribedNodes = [...t.subscriptions.entries()]
    .filter(([, intervals]) => intervals.some((i) => i.fromMs <= atMs && atMs < i.toMs))
    .map(([node]) => node);
  const last = t.topology.filter((entry) => entry.atMs <= atMs).at(-1);
  if (!last) return { subscribed: subscribedNodes.length, known: Number.POSITIVE_INFINITY };
  if (typeof last.primaries === 'number') {
    return { subscribed: Math.min(subscribedNodes.length, last.primaries), known: last.primaries };
  }
  const subscribedSet = new Set(subscribedNodes);
  return {
    subscribed: last.primaries.filter((node) => subscribedSet.has(node)).length,
    known: last.primaries.length,
  };
}

const isCovered = (c: { subscribed: number; known: number }) => c.known > 0 && c.subscribed >= c.known;

export function computeChaosAccount(
  observations: ChaosObservations,
  options: AccountingOptions = {},
): ChaosAccount {
  const outageMarginMs = options.outageMarginMs ?? DEFAULT_OUTAGE_MARGIN_MS;
  const toleranceMs = options.subscriptionToleranceMs ?? DEFAULT_SUBSCRIPTION_TOLERANCE_MS;
  const origin = observations.generatorStartMs;
  const isTracked = (key: string) => key.startsWith(observations.trackedPrefix);
  const timelines = buildTimelines(observations.records, observations.lifecycle);

  // Publications: the first per key decides; a second one is a Redis-level republication.
  const firstPublication = new Map<string, Publication>();
  /** Publications per key: a key Redis published n times may be handled n times. */
  const publicationsPerKey = new Map<string, number>();
  let republished = 0;
  const republishedKeys = new Set<string>();
  for (const publication of [...observations.publications].sort((a, b) => a.atMs - b.atMs)) {
    if (!isTracked(publication.key)) continue;
    publicationsPerKey.set(publication.key, (publicationsPerKey.get(publication.key) ?? 0) + 1);
    if (firstPublication.has(publication.key)) {
      if (!republishedKeys.has(publication.key)) republished++;
      republishedKeys.add(publication.key);
      continue;
    }
    firstPublication.set(publication.key, publication);
  }
  const generatedByKey = new Map(observations.generated.map((g) => [g.key, g]));

  const deadlineOf = (key: string) => {
    const generated = generatedByKey.get(key);
    return generated ? generated.setAtMs + observations.ttlMs : undefined;
  };
  const inOutage = (key: string): boolean => {
    const generated = generatedByKey.get(key);
    if (!generated?.owner) return false;
    const deadline = generated.setAtMs + observations.ttlMs;
    return observations.outages.some(
      (o) =>
        o.node === generated.owner &&
        deadline >= o.fromMs - outageMarginMs &&
        deadline <= o.toMs + outageMarginMs,
    );
  };
  const workerSubscribedAt = (node: string, atMs: number): boolean => {
    for (const t of timelines.values()) {
      const intervals = t.subscriptions.get(node);
      if (intervals?.some((i) => i.fromMs <= atMs - toleranceMs && atMs <= i.toMs)) return true;
    }
    return false;
  };

  const excludedKeys = new Set<string>();
  let primaryDown = 0;
  let unsubscribed = 0;
  const expectedKeys = new Set<string>();
  for (const [key, publication] of firstPublication) {
    if (inOutage(key)) {
      primaryDown++;
      excludedKeys.add(key);
    } else if (!workerSubscribedAt(publication.node, publication.atMs)) {
      unsubscribed++;
      excludedKeys.add(key);
    } else {
      expectedKeys.add(key);
    }
  }

  let faultedPrimary = 0;
  let otherUnpublished = 0;
  for (const generated of observations.generated) {
    if (!isTracked(generated.key) || firstPublication.has(generated.key)) continue;
    const deadline = generated.setAtMs + observations.ttlMs;
    const faulted = observations.outages.some(
      (o) =>
        o.node === generated.owner &&
        generated.setAtMs <= o.toMs + outageMarginMs &&
        deadline >= o.fromMs - outageMarginMs,
    );
    if (faulted) faultedPrimary++;
    else otherUnpublished++;
  }

  // Handler calls per key.
  const processedRecords = observations.records
    .filter(ofEvent('key.processed'))
    .filter((r) => isTracked(r.fields.key))
    .sort((a, b) => a.atMs - b.atMs);
  const callsPerKey = new Map<string, number>();
  const firstCall = new Map<string, WorkerRecordOf<'key.processed'>>();
  let replayed = 0;
  for (const record of processedRecords) {
    const key = record.fields.key;
    callsPerKey.set(key, (callsPerKey.get(key) ?? 0) + 1);
    if (!firstCall.has(key)) firstCall.set(key, record);
    if (record.fields.replayed === true) replayed++;
  }
  const snapshots = observations.markSnapshots ?? [];
  let processed = 0;
  let processedUnexpected = 0;
  let excludedProcessed = 0;
  let duplicates = 0;
  let duplicatesAfterMark = 0;
  let duplicatesExcluded = 0;
  for (const [key, calls] of callsPerKey) {
    if (expectedKeys.has(key)) processed++;
    else processedUnexpected++;
    // Each publication is an expiry the handler is owed: calls beyond them are duplicates.
    const owed = Math.max(1, publicationsPerKey.get(key) ?? 0);
    const beyond = Math.max(0, calls - owed);
    if (excludedKeys.has(key)) {
      excludedProcessed++;
      duplicatesExcluded += beyond;
    } else {
      duplicates += beyond;
      if (beyond > 0 && handledAfterLastMark(firstCall.get(key), snapshots)) duplicatesAfterMark += beyond;
    }
  }
  let maxDelayMs = 0;
  let maxDelayNode: string | undefined;
  const delayed = new Set<string>();
  for (const record of processedRecords) {
    const key = record.fields.key;
    if (delayed.has(key) || !expectedKeys.has(key)) continue;
    delayed.add(key);
    const publication = firstPublication.get(key) as Publication;
    if (record.atMs - publication.atMs > maxDelayMs) {
      maxDelayMs = record.atMs - publication.atMs;
      maxDelayNode = publication.node;
    }
  }
  const keysPerId = new Map<string, Set<string>>();
  for (const record of processedRecords) {
    const id = record.fields.eventId;
    let named = keysPerId.get(id);
    if (!named) {
      named = new Set();
      keysPerId.set(id, named);
    }
    named.add(record.fields.key);
  }
  const reusedIds = [...keysPerId].filter(([, named]) => named.size > 1);
  const missingKeys = [...expectedKeys].filter((key) => !callsPerKey.has(key));
  missingKeys.sort((a, b) => (deadlineOf(a) ?? 0) - (deadlineOf(b) ?? 0));

  const shedByReason: Record<string, number> = {};
  let shed = 0;
  for (const record of observations.records) {
    if (record.event !== 'events.shed') continue;
    const count = record.fields.count;
    const reason = record.fields.reason;
    shed += count;
    shedByReason[reason] = (shedByReason[reason] ?? 0) + count;
  }

  const failedKeys = new Set(observations.records.filter(ofEvent('handler.failed')).map((r) => r.fields.key));
  const failedUnprocessed = missingKeys.filter((key) => failedKeys.has(key)).length;
  let shedDropped = 0;
  for (const [reason, count] of Object.entries(shedByReason)) {
    if (!WINDOW_SHED_REASONS.has(reason)) shedDropped += count;
  }

  const longest = longestGap(
    [...firstPublication.values()].map((p) => p.atMs),
    processedRecords.map((r) => r.atMs),
  );

  const stopMs = observations.workersStopMs ?? Number.POSITIVE_INFINITY;
  const acquisitions = observations.records
    .filter(ofEvent('leader.acquired'))
    .filter((r) => r.atMs < stopMs)
    .map((r) => ({ workerId: r.workerId, atMs: r.atMs, token: r.fields.fencingToken }))
    .sort((a, b) => a.atMs - b.atMs);

  const terms = leadershipTerms(observations.records, timelines);
  const missingWhen = { noLeader: 0, leaderUnsubscribed: 0, leaderSubscribed: 0 };
  for (const key of missingKeys) {
    const publication = firstPublication.get(key) as Publication;
    const term = terms.find((t) => t.fromMs <= publication.atMs && publication.atMs < t.toMs);
    if (!term) missingWhen.noLeader++;
    else if (
      timelines
        .get(term.workerId)
        ?.subscriptions.get(publication.node)
        ?.some((i) => i.fromMs <= publication.atMs && publication.atMs <= i.toMs)
    )
      missingWhen.leaderSubscribed++;
    else missingWhen.leaderUnsubscribed++;
  }

  const sortedFaults = [...observations.faults].sort((a, b) => a.atMs - b.atMs);
  const faults = sortedFaults.map((fault, index): FaultOutcome => {
    const tokenAtFault = Math.max(0, ...acquisitions.filter((a) => a.atMs < fault.atMs).map((a) => a.token));
    // A takeover belongs to the latest fault before it.
    const nextFaultMs = sortedFaults[index + 1]?.atMs ?? Number.POSITIVE_INFINITY;
    const next = acquisitions.find(
      (a) => a.atMs >= fault.atMs && a.atMs < nextFaultMs && a.token > tokenAtFault,
    );
    const firstUnderNext =
      next && processedRecords.find((r) => r.atMs >= fault.atMs && r.fields.fencingToken >= next.token);
    return {
      name: fault.name,
      detail: fault.detail,
      atOffsetMs: fault.atMs - origin,
      newLeaderAfterMs: next ? next.atMs - fault.atMs : undefined,
      processingAfterMs: firstUnderNext ? firstUnderNext.atMs - fault.atMs : undefined,
    };
  });

  return {
    generated: observations.generated.filter((g) => isTracked(g.key)).length,
    setFailures: observations.setFailures,
    published: firstPublication.size,
    republished,
    excluded: { primaryDown, unsubscribed },
    excludedProcessed,
    unpublished: { faultedPrimary, other: otherUnpublished },
    expected: expectedKeys.size,
    processed,
    processedUnexpected,
    missing: missingKeys.length,
    shed,
    shedByReason,
    shedDropped,
    failedUnprocessed,
    lost: Math.max(0, missingKeys.length - failedUnprocessed - shedDropped),
    duplicates,
    duplicatesAfterMark,
    duplicatesExcluded,
    idsNamingTwoKeys: reusedIds.length,
    idsNamingTwoKeysSample: reusedIds.slice(0, 10).map(([id, named]) => `${id}: ${[...named].join(', ')}`),
    handlerCalls: processedRecords.length,
    replayed,
    handlerFailures: observations.records.filter((r) => r.event === 'handler.failed').length,
    maxDelayMs,
    maxDelayNode,
    longestGapMs: longest.gapMs,
    longestGapStartOffsetMs: longest.startMs === undefined ? undefined : longest.startMs - origin,
    leaderChanges: acquisitions.filter((a) => a.atMs >= origin).length,
    fencingTokens: [...new Set(acquisitions.map((a) => a.token))],
    faults,
    fencing: checkFencing(processedRecords),
    pausedLeaders: checkPausedLeaders(observations, processedRecords),
    coverageViolations: checkCoverage(acquisitions, timelines, origin),
    unexpectedExits: unexpectedExits(observations),
    subscriptionDowns: observations.records.filter(
      (r) =>
        r.event === 'subscription.down' && r.fields.reason !== 'shutdown' && r.fields.reason !== 'removed',
    ).length,
    missingSample: missingKeys.slice(0, 20),
    missingWhen,
  };
}

/** Leadership terms: `leader.acquired` until `leader.lost` / `leader.released` or the worker's death. */
function leadershipTerms(
  records: readonly WorkerRecord[],
  timelines: Map<string, WorkerTimeline>,
): { workerId: string; fromMs: number; toMs: number }[] {
  const terms: { workerId: string; fromMs: number; toMs: number }[] = [];
  const open = new Map<string, { workerId: string; fromMs: number; toMs: number }>();
  for (const record of [...records].sort((a, b) => a.atMs - b.atMs)) {
    if (record.event === 'leader.acquired') {
      const term = { workerId: record.workerId, fromMs: record.atMs, toMs: Number.POSITIVE_INFINITY };
      open.set(record.workerId, term);
      terms.push(term);
    } else if (record.event === 'leader.lost' || record.event === 'leader.released') {
      const term = open.get(record.workerId);
      if (term) term.toMs = record.atMs;
      open.delete(record.workerId);
    }
  }
  for (const term of terms) {
    const timeline = timelines.get(term.workerId);
    if (timeline) {
      term.toMs = Math.min(term.toMs, timeline.deadAtMs);
      // A paused leader leads nobody: its term ends when it was stopped.
      const pause = timeline.paused.find((p) => p.fromMs >= term.fromMs && p.fromMs < term.toMs);
      if (pause) term.toMs = pause.fromMs;
    }
  }
  return terms;
}

/**
 * Longest interval between consecutive processing instants inside [first, last publication]; the
 * window's edges count as boundaries, so a run whose processing stopped for good shows that too.
 */
export function longestGap(
  publicationTimes: readonly number[],
  processedTimes: readonly number[],
): { gapMs: number; startMs: number | undefined } {
  if (publicationTimes.length === 0) return { gapMs: 0, startMs: undefined };
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const t of publicationTimes) {
    if (t < first) first = t;
    if (t > last) last = t;
  }
  const inside = processedTimes.filter((t) => t > first && t < last).sort((a, b) => a - b);
  const points = [first, ...inside, last];
  let gapMs = 0;
  let startMs: number | undefined;
  for (let i = 1; i < points.length; i++) {
    const gap = (points[i] as number) - (points[i - 1] as number);
    if (gap > gapMs) {
      gapMs = gap;
      startMs = points[i - 1];
    }
  }
  return { gapMs, startMs };
}

/** Tokens of `key.processed` lines ordered by time must never go down (see the module comment). */
/**
 * When the gate let a call start: its line's time minus `handlerMs` (the line's time when absent).
 * A call in flight across a pause of its process completes after the pause but started before it.
 */
export function callStartMs(record: WorkerRecordOf<'key.processed'>): number {
  return record.atMs - record.fields.handlerMs;
}

export function checkFencing(processedRecords: readonly WorkerRecordOf<'key.processed'>[]): FencingCheck {
  // Ordered by when each call started: the gate decides at the start, under the token it had then.
  const sorted = [...processedRecords]
    .map((record) => ({ ...record, atMs: callStartMs(record) }))
    .sort((a, b) => a.atMs - b.atMs);
  let maxBefore = Number.NEGATIVE_INFINITY;
  let maxBeforeWorker = '';
  let groupMax = Number.NEGATIVE_INFINITY;
  let groupMaxWorker = '';
  let groupTime = Number.NaN;
  let violations = 0;
  let example: string | undefined;
  for (const record of sorted) {
    const token = record.fields.fencingToken;
    if (record.atMs !== groupTime) {
      if (groupMax > maxBefore) {
        maxBefore = groupMax;
        maxBeforeWorker = groupMaxWorker;
      }
      groupTime = record.atMs;
      groupMax = Number.NEGATIVE_INFINITY;
    }
    if (token < maxBefore) {
      violations++;
      example ??=
        `${record.workerId} processed ${record.fields.key} with token ${token} at ` +
        `${new Date(record.atMs).toISOString()}, after ${maxBeforeWorker} had processed with token ${maxBefore}`;
    }
    if (token > groupMax) {
      groupMax = token;
      groupMaxWorker = record.workerId;
    }
  }
  return { ok: violations === 0, violations, example };
}

function checkPausedLeaders(
  observations: ChaosObservations,
  processedRecords: readonly WorkerRecordOf<'key.processed'>[],
): PausedLeaderCheck[] {
  const checks: PausedLeaderCheck[] = [];
  const signals = [...observations.lifecycle]
    .filter((e) => e.kind === 'signalled')
    .sort((a, b) => a.atMs - b.atMs);
  for (const stop of signals.filter((e) => e.signal === 'SIGSTOP')) {
    const resume = signals.find(
      (e) => e.workerId === stop.workerId && e.signal === 'SIGCONT' && e.atMs >= stop.atMs,
    );
    if (!resume) continue;
    // The worker's leadership at the moment it was paused: its last leadership line before then.
    const last = observations.records
      .filter(
        (r) =>
          r.workerId === stop.workerId &&
          r.atMs <= stop.atMs &&
          (r.event === 'leader.acquired' || r.event === 'leader.lost' || r.event === 'leader.released'),
      )
      .sort((a, b) => a.atMs - b.atMs)
      .at(-1);
    if (last?.event !== 'leader.acquired') continue;
    const token = last.fields.fencingToken;
    const afterResume = processedRecords.filter(
      (r) => r.workerId === stop.workerId && r.atMs >= resume.atMs && r.fields.fencingToken === token,
    );
    // No call can start while the process is frozen: one that started before the middle of the
    // pause was running when it was frozen, one that started after it was let through on resume.
    const midPauseMs = (stop.atMs + resume.atMs) / 2;
    const inFlightAtPause = afterResume.filter((r) => callStartMs(r) < midPauseMs).length;
    checks.push({
      workerId: stop.workerId,
      fencingToken: token,
      pausedMs: resume.atMs - stop.atMs,
      processedAfterResume: afterResume.length - inFlightAtPause,
      inFlightAtPause,
    });
  }
  return checks;
}

function checkCoverage(
  acquisitions: readonly { workerId: string; atMs: number }[],
  timelines: Map<string, WorkerTimeline>,
  origin: number,
): CoverageViolation[] {
  const violations: CoverageViolation[] = [];
  for (const acquisition of acquisitions) {
    const own = timelines.get(acquisition.workerId);
    if (!own) continue;
    const coverage = coverageAt(own, acquisition.atMs);
    if (isCovered(coverage)) continue;
    const coveredPeers = [...timelines.entries()]
      .filter(
        ([id, t]) =>
          id !== acquisition.workerId &&
          isAlive(t, acquisition.atMs) &&
          !isPaused(t, acquisition.atMs) &&
          isCovered(coverageAt(t, acquisition.atMs)),
      )
      .map(([id]) => id);
    if (coveredPeers.length === 0) continue;
    violations.push({
      workerId: acquisition.workerId,
      atOffsetMs: acquisition.atMs - origin,
      subscribed: coverage.subscribed,
      known: Number.isFinite(coverage.known) ? coverage.known : 0,
      coveredPeers,
    });
  }
  return violations;
}

function unexpectedExits(observations: ChaosObservations): string[] {
  const signalled = new Set(
    observations.lifecycle
      .filter((e) => e.kind === 'signalled' && e.signal !== 'SIGSTOP' && e.signal !== 'SIGCONT')
      .map((e) => e.workerId),
  );
  const exits = observations.lifecycle
    .filter((e) => e.kind === 'exited' && !signalled.has(e.workerId))
    .map((e) => `${e.workerId} exited (${e.signal ?? `code ${e.code ?? '?'}`})`);
  const crashes = observations.records
    .filter((r) => r.event === 'worker.crashed')
    .map((r) => `${r.workerId} worker.crashed (${asText(r.fields.kind) ?? '?'})`);
  return [...exits, ...crashes];
}

/**
 * True when `record` (a `key.processed` line) was written by a leader whose marks the harness read
 * after it stopped, for an event numbered after that leader's mark on its primary: a successor must
 * replay it (nobody can know the call took effect), so its second call is an allowed duplicate. An
 * event with no readable mark of that leader on its primary is not counted here (strict).
 */
function handledAfterLastMark(
  record: WorkerRecordOf<'key.processed'> | undefined,
  snapshots: readonly MarkSnapshot[],
): boolean {
  if (!record) return false;
  const token = record.fields.fencingToken;
  const eventId = record.fields.eventId;
  const split = eventId.lastIndexOf(':');
  const nodeId = eventId.slice(0, split);
  const seq = Number(eventId.slice(split + 1));
  if (split <= 0 || !Number.isFinite(seq)) return false;
  return snapshots.some((snapshot) => {
    if (snapshot.fencingToken !== token) return false;
    const markSeq = snapshot.seqByNode[nodeId];
    return markSeq !== undefined && seq > markSeq;
  });
}

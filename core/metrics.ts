/**
 * CloudWatch Embedded Metric Format written by hand (one JSON line per flush on stdout), shared by
 * the worker (ECS, awslogs driver) and the Lambda. Chosen over Powertools Metrics because the worker
 * is a long-running process, not an invocation: it aggregates between flushes on its own timer, and
 * the same code runs in both places and in tests without Lambda context. Namespace from
 * METRICS_NAMESPACE, one dimension set `[["LeaderName"]]` (README.md, "Metrics", lists the names),
 * except the counters of METRIC_BREAKDOWNS, which are also broken down by one more dimension (`countBy`).
 */
import { stdoutLines } from './stdout-lines.ts';

export type MetricUnit = 'Count' | 'Milliseconds' | 'Seconds' | 'None' | 'Count/Second';

export const WORKER_METRICS = [
  'EventsReceived',
  'EventsProcessed',
  'HandlerFailures',
  'ProcessingLatencyMs',
  'IsLeader',
  /**
   * Distribution: from when a lease renewal was due to its confirmation (the renew timer's lateness on a
   * busy event loop plus the round trip); it must stay well below LEASE_RENEW_DEADLINE_MS - LEASE_RENEW_INTERVAL_MS.
   */
  'LeaseRenewLatencyMs',
  'SubscribedPrimaries',
  'EventsShed',
  /** Gauge 0/1: 1 on a worker standing by because another running process has its WORKER_ID. */
  'DuplicateWorkerId',
  /** Gauge 0/1: 1 while peers of this LEADER_NAME ran another KEY_PATTERN/HANDLER beyond a deploy's overlap. */
  'ConfigMismatch',
  /** Outbox appends no replica confirmed after every attempt (left unsettled; HANDLER=stream). */
  'OutboxAppendsUnconfirmed',
  /** Outbox appends settled without WAIT: the cluster has no replica (HANDLER=stream). */
  'OutboxAppendsUnreplicated',
  /** Outbox entries the length bound dropped before every consumer group read them (HANDLER=stream). */
  'OutboxEntriesTrimmedUnread',
  /** Distribution: a tracked key's deadline -> its handler call (on-time expiry; the leader only). */
  'ExpiryLagMs',
  /** Gauge: keys in this worker's deadline index (on-time expiry). */
  'TrackedKeys',
  /** Gauge: primaries this worker leaves to Redis' own (late) expiry: no PEXPIRETIME there (on-time expiry). */
  'NativeExpiryPrimaries',
  /** Handler calls whose event carried the key's value (value capture; the leader only). */
  'ValuesCaptured',
  /**
   * Handler calls whose event came without a value, also by `Reason` (one of VALUE_MISSING_REASONS,
   * worker/handlers/expiry-handler.ts): written with `countBy`.
   */
  'ValuesMissing',
  /** Held values released because their key's `expired` event did not come in time (worker/expiry/held-values.ts). */
  'ValuesReleased',
  /** Gauge: bytes of held values plus reads in flight, as charged against VALUE_BUDGET_BYTES. */
  'HeldValueBytes',
] as const;

export const LAMBDA_METRICS = [
  'LeaderPresent',
  'LeaderTaskRunning',
  'WorkersRunning',
  'LeaderAgeSeconds',
  'FencingToken',
  'PrimariesTotal',
  'PrimariesVerified',
  'NodesConfigured',
  'NodesDrifted',
] as const;

export type MetricName = (typeof WORKER_METRICS)[number] | (typeof LAMBDA_METRICS)[number];

/**
 * Counters that are also broken down by one more dimension (metric -> the dimension's name). Each is
 * written with `countBy` only. In a flush with counts, one document per dimension value carries the
 * value's sum under two dimension sets, `[LeaderName]` and `[LeaderName, <dimension>]`, so CloudWatch
 * keeps the total and the breakdown from the same numbers (and a reader summing the documents gets the
 * total); in a flush without any, the total is written as 0 with the other counters, when declared.
 */
export const METRIC_BREAKDOWNS = {
  ValuesMissing: 'Reason',
} as const satisfies Partial<Record<MetricName, string>>;

export type BrokenDownMetric = keyof typeof METRIC_BREAKDOWNS;

/**
 * Distinct dimension values of one metric per flush; further values are counted under `other`. The
 * callers pass values from closed lists (VALUE_MISSING_REASONS: 9), so this only guards the CloudWatch
 * bill (one custom metric per value) against a bug.
 */
export const MAX_BREAKDOWN_VALUES = 20;
export const OVERFLOW_BREAKDOWN_VALUE = 'other';

/** EMF allows at most 100 values per metric per document. */
const MAX_VALUES_PER_METRIC = 100;
/**
 * Distribution samples kept between two flushes (reservoir sampling beyond this): at most 10 EMF
 * documents per distribution per flush, whatever the event rate. CloudWatch's p50/p99 are then computed
 * over a uniform sample of the period's values.
 */
const MAX_SAMPLES_PER_FLUSH = 1000;

export interface MetricsOptions {
  readonly namespace: string;
  readonly leaderName: string;
  /**
   * Receives one complete EMF document without the newline. Default: stdout, through the process's
   * one stdout writer (core/stdout-lines.ts), which the logger's lines share.
   */
  readonly write?: (line: string) => void;
  readonly now?: () => number;
}

interface Series {
  unit: MetricUnit;
  /** Counters: summed. */
  sum?: number;
  /** Gauges: last value wins. */
  last?: number;
  /** Distributions: every sample, rounded so that repeated values collapse. */
  samples?: number[];
  /** Samples offered since the last flush (reservoir sampling denominator). */
  seen?: number;
  /** Counters of METRIC_BREAKDOWNS: the sum per dimension value since the last flush. */
  breakdown?: Map<string, number>;
}

function roundSample(value: number): number {
  if (value < 10) return Math.round(value * 100) / 100;
  if (value < 1000) return Math.round(value * 10) / 10;
  return Math.round(value);
}

export class EmfMetrics {
  private readonly series = new Map<MetricName, Series>();
  private readonly write: (line: string) => void;
  private readonly now: () => number;

  constructor(private readonly options: MetricsOptions) {
    this.write = options.write ?? ((line: string) => stdoutLines().write(line));
    this.now = options.now ?? Date.now;
  }

  /**
   * Declares counters so that they are written as 0 in every flush until touched: a quiet period then
   * shows as 0 on dashboards and alarms, not as missing data.
   */
  declareCounters(names: readonly MetricName[]): void {
    for (const name of names) {
      const s = this.get(name, 'Count');
      s.sum ??= 0;
    }
  }

  /** Adds to a counter (flushed as the sum since the last flush; 0 when declared and untouched). */
  count(name: Exclude<MetricName, BrokenDownMetric>, value = 1): void {
    const s = this.get(name, 'Count');
    s.sum = (s.sum ?? 0) + value;
  }

  /**
   * Adds to a counter of METRIC_BREAKDOWNS under one value of its dimension (`Reason` of
   * `ValuesMissing`); the total is the sum over the values.
   */
  countBy(name: BrokenDownMetric, dimensionValue: string, value = 1): void {
    const s = this.get(name, 'Count');
    s.sum = (s.sum ?? 0) + value;
    s.breakdown ??= new Map();
    const key =
      s.breakdown.has(dimensionValue) || s.breakdown.size < MAX_BREAKDOWN_VALUES
        ? dimensionValue
        : OVERFLOW_BREAKDOWN_VALUE;
    s.breakdown.set(key, (s.breakdown.get(key) ?? 0) + value);
  }

  /** Sets a gauge (flushed as its latest value). */
  gauge(name: MetricName, value: number, unit: MetricUnit = 'None'): void {
    this.get(name, unit).last = value;
  }

  /** Records one sample of a distribution (latency): CloudWatch computes p50/p99 from them. */
  sample(name: MetricName, value: number, unit: MetricUnit = 'Milliseconds'): void {
    const s = this.get(name, unit);
    if (s.samples === undefined) s.samples = [];
    const samples = s.samples;
    s.seen = (s.seen ?? 0) + 1;
    if (samples.length < MAX_SAMPLES_PER_FLUSH) {
      samples.push(roundSample(value));
    } else {
      const slot = Math.floor(Math.random() * s.seen);
      if (slot < MAX_SAMPLES_PER_FLUSH) samples[slot] = roundSample(value);
    }
  }

  private get(name: MetricName, unit: MetricUnit): Series {
    let s = this.series.get(name);
    if (!s) {
      s = { unit };
      this.series.set(name, s);
    }
    return s;
  }

  /**
   * Writes what was collected since the last flush as EMF documents and resets counters and
   * distributions (gauges keep their value). Distributions are sent as arrays of values (the EMF
   * spec's form), at most 100 per document.
   */
  flush(): void {
    const scalar: Record<string, number> = {};
    const scalarDefs: { Name: string; Unit: MetricUnit }[] = [];
    const distributions: { name: string; unit: MetricUnit; values: number[] }[] = [];
    const breakdowns: { name: BrokenDownMetric; unit: MetricUnit; sums: Map<string, number> }[] = [];
    for (const [name, s] of this.series) {
      if (s.breakdown !== undefined && s.breakdown.size > 0) {
        breakdowns.push({ name: name as BrokenDownMetric, unit: s.unit, sums: s.breakdown });
        s.breakdown = new Map();
        s.sum = 0;
      } else if (s.samples !== undefined) {
        if (s.samples.length === 0) continue;
        distributions.push({ name, unit: s.unit, values: s.samples });
        s.samples = [];
        s.seen = 0;
      } else if (s.sum !== undefined) {
        scalar[name] = s.sum;
        scalarDefs.push({ Name: name, Unit: s.unit });
        s.sum = 0;
      } else if (s.last !== undefined) {
        scalar[name] = s.last;
        scalarDefs.push({ Name: name, Unit: s.unit });
      }
    }
    if (scalarDefs.length > 0) this.writeDocument(scalarDefs, scalar);
    for (const b of breakdowns) {
      const dimension = METRIC_BREAKDOWNS[b.name];
      for (const [dimensionValue, sum] of b.sums) {
        this.writeDocument([{ Name: b.name, Unit: b.unit }], { [dimension]: dimensionValue, [b.name]: sum }, [
          ['LeaderName'],
          ['LeaderName', dimension],
        ]);
      }
    }
    for (const d of distributions) {
      for (let i = 0; i < d.values.length; i += MAX_VALUES_PER_METRIC) {
        this.writeDocument([{ Name: d.name, Unit: d.unit }], {
          [d.name]: d.values.slice(i, i + MAX_VALUES_PER_METRIC),
        });
      }
    }
  }

  private writeDocument(
    defs: { Name: string; Unit: MetricUnit }[],
    values: Record<string, unknown>,
    dimensions: readonly (readonly string[])[] = [['LeaderName']],
  ): void {
    this.write(
      JSON.stringify({
        _aws: {
          Timestamp: this.now(),
          CloudWatchMetrics: [{ Namespace: this.options.namespace, Dimensions: dimensions, Metrics: defs }],
        },
        LeaderName: this.options.leaderName,
        ...values,
      }),
    );
  }
}

/** A parsed EMF document: used by tests and by the CDK check that dashboards use emitted names. */
export interface EmfDocument {
  readonly namespace: string;
  readonly dimensions: readonly (readonly string[])[];
  readonly metrics: readonly { readonly name: string; readonly unit: string }[];
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Parses one line; undefined when it is not an EMF document. */
export function parseEmfLine(line: string): EmfDocument[] | undefined {
  let data: unknown;
  try {
    data = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null || !('_aws' in data)) return undefined;
  const aws = (data as { _aws: { CloudWatchMetrics?: unknown } })._aws;
  if (!Array.isArray(aws.CloudWatchMetrics)) return undefined;
  return aws.CloudWatchMetrics.map(
    (directive: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }) => ({
      namespace: directive.Namespace,
      dimensions: directive.Dimensions,
      metrics: directive.Metrics.map((m) => ({ name: m.Name, unit: m.Unit })),
      fields: data as Record<string, unknown>,
    }),
  );
}

import { describe, expect, it } from 'vitest';
import {
  EmfMetrics,
  MAX_BREAKDOWN_VALUES,
  METRIC_BREAKDOWNS,
  OVERFLOW_BREAKDOWN_VALUE,
  parseEmfLine,
  WORKER_METRICS,
} from '../../../core/metrics.ts';
import { VALUE_MISSING_REASONS } from '../../../worker/handlers/expiry-handler.ts';

describe('EmfMetrics', () => {
  it('writes EMF documents with namespace, the LeaderName dimension and the values', () => {
    const lines: string[] = [];
    const metrics = new EmfMetrics({
      namespace: 'KL',
      leaderName: 'blue',
      write: (l) => lines.push(l),
      now: () => 1000,
    });
    metrics.count('EventsReceived', 3);
    metrics.count('EventsReceived');
    metrics.gauge('IsLeader', 1);
    metrics.sample('ProcessingLatencyMs', 1.234);
    metrics.sample('ProcessingLatencyMs', 2);
    metrics.flush();
    const docs = lines.map((l) => parseEmfLine(l));
    expect(docs.every((d) => d !== undefined)).toBe(true);
    const [scalar, latency] = lines.map((l) => JSON.parse(l));
    expect(scalar).toMatchObject({ LeaderName: 'blue', EventsReceived: 4, IsLeader: 1 });
    expect(scalar._aws).toEqual({
      Timestamp: 1000,
      CloudWatchMetrics: [
        {
          Namespace: 'KL',
          Dimensions: [['LeaderName']],
          Metrics: [
            { Name: 'EventsReceived', Unit: 'Count' },
            { Name: 'IsLeader', Unit: 'None' },
          ],
        },
      ],
    });
    expect(latency.ProcessingLatencyMs).toEqual([1.23, 2]);
    for (const doc of docs.flat())
      for (const m of doc?.metrics ?? []) expect(WORKER_METRICS).toContain(m.name);
  });

  it('resets counters and distributions but keeps gauges after a flush', () => {
    const lines: string[] = [];
    const metrics = new EmfMetrics({ namespace: 'KL', leaderName: 'x', write: (l) => lines.push(l) });
    metrics.count('EventsShed', 2);
    metrics.gauge('SubscribedPrimaries', 3);
    metrics.flush();
    lines.length = 0;
    metrics.flush();
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ EventsShed: 0, SubscribedPrimaries: 3 });
    expect(lines).toHaveLength(1);
  });

  it('bounds distribution output: at most 100 values per document and 1000 per flush', () => {
    const lines: string[] = [];
    const metrics = new EmfMetrics({ namespace: 'KL', leaderName: 'x', write: (l) => lines.push(l) });
    for (let i = 0; i < 50_000; i++) metrics.sample('ProcessingLatencyMs', i % 500);
    metrics.flush();
    expect(lines).toHaveLength(10);
    for (const line of lines) expect(JSON.parse(line).ProcessingLatencyMs.length).toBeLessThanOrEqual(100);
  });
});

describe('declared counters', () => {
  it('are written as 0 until touched, so quiet periods are not missing data', () => {
    const lines: string[] = [];
    const metrics = new EmfMetrics({ namespace: 'KL', leaderName: 'x', write: (l) => lines.push(l) });
    metrics.declareCounters(['EventsShed', 'HandlerFailures']);
    metrics.flush();
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ EventsShed: 0, HandlerFailures: 0 });
  });
});

describe('parseEmfLine', () => {
  it('ignores ordinary log lines', () => {
    expect(parseEmfLine('{"event":"x"}')).toBeUndefined();
    expect(parseEmfLine('not json')).toBeUndefined();
  });
});

describe('counters broken down by one more dimension (ValuesMissing by Reason)', () => {
  function capture() {
    const lines: string[] = [];
    const metrics = new EmfMetrics({
      namespace: 'KL',
      leaderName: 'blue',
      write: (l) => lines.push(l),
      now: () => 5,
    });
    return { metrics, docs: () => lines.splice(0).map((l) => JSON.parse(l)) };
  }

  it('writes one document per value, under [LeaderName] and [LeaderName, Reason], beside the plain counters', () => {
    const { metrics, docs } = capture();
    metrics.declareCounters(['ValuesMissing', 'ValuesCaptured']);
    metrics.count('ValuesCaptured', 7);
    metrics.countBy('ValuesMissing', 'over-budget', 3);
    metrics.countBy('ValuesMissing', 'too-large');
    metrics.countBy('ValuesMissing', 'over-budget');
    metrics.flush();
    const [scalar, ...reasons] = docs();
    // The total is not also in the scalar document: summing documents never counts a miss twice.
    expect(scalar).toMatchObject({ ValuesCaptured: 7 });
    expect(scalar).not.toHaveProperty('ValuesMissing');
    expect(reasons).toEqual([
      {
        _aws: {
          Timestamp: 5,
          CloudWatchMetrics: [
            {
              Namespace: 'KL',
              Dimensions: [['LeaderName'], ['LeaderName', 'Reason']],
              Metrics: [{ Name: 'ValuesMissing', Unit: 'Count' }],
            },
          ],
        },
        LeaderName: 'blue',
        Reason: 'over-budget',
        ValuesMissing: 4,
      },
      expect.objectContaining({ Reason: 'too-large', ValuesMissing: 1 }),
    ]);
    // parseEmfLine reads both dimension sets (the CDK check of emitted metrics uses it).
    const parsed = parseEmfLine(JSON.stringify(reasons[0]));
    expect(parsed?.[0]?.dimensions).toEqual([['LeaderName'], ['LeaderName', 'Reason']]);
  });

  it('a quiet flush writes the declared total as 0 with the other counters, and no breakdown', () => {
    const { metrics, docs } = capture();
    metrics.declareCounters(['ValuesMissing']);
    metrics.countBy('ValuesMissing', 'read-late');
    metrics.flush();
    expect(docs()).toHaveLength(1);
    metrics.flush();
    const quiet = docs();
    expect(quiet).toHaveLength(1);
    expect(quiet[0]).toMatchObject({ ValuesMissing: 0 });
    expect(quiet[0]._aws.CloudWatchMetrics[0].Dimensions).toEqual([['LeaderName']]);
    expect(quiet[0]).not.toHaveProperty('Reason');
  });

  it('bounds the distinct values per flush: the rest is counted under "other"', () => {
    const { metrics, docs } = capture();
    for (let i = 0; i < MAX_BREAKDOWN_VALUES + 5; i++) metrics.countBy('ValuesMissing', `r${i}`, 2);
    metrics.countBy('ValuesMissing', 'r0');
    metrics.flush();
    const written = docs();
    expect(written).toHaveLength(MAX_BREAKDOWN_VALUES + 1);
    const byReason = Object.fromEntries(written.map((d) => [d.Reason, d.ValuesMissing]));
    expect(byReason.r0).toBe(3);
    expect(byReason[OVERFLOW_BREAKDOWN_VALUE]).toBe(10);
    expect(written.reduce((sum, d) => sum + d.ValuesMissing, 0)).toBe(2 * (MAX_BREAKDOWN_VALUES + 5) + 1);
  });

  it('every reason fits under the bound, and only catalogued metrics are broken down', () => {
    expect(VALUE_MISSING_REASONS.length).toBeLessThan(MAX_BREAKDOWN_VALUES);
    for (const name of Object.keys(METRIC_BREAKDOWNS)) expect(WORKER_METRICS).toContain(name);
  });
});

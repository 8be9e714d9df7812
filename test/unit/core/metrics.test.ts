import { describe, expect, it } from 'vitest';
import { EmfMetrics, parseEmfLine, WORKER_METRICS } from '../../../core/metrics.ts';

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

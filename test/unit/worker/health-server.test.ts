import { describe, expect, it } from 'vitest';
import type { Coverage } from '../../../worker/expiry/subscriber-pool.ts';
import { evaluateHealth } from '../../../worker/health-server.ts';

const coverage = (subscribed: number, known: number): Coverage => ({
  subscribed,
  known,
  complete: known > 0 && subscribed === known,
  primaries: Array.from({ length: known }, (_, i) => ({
    node: `127.0.0.1:${7000 + i}`,
    nodeId: `n${i}`,
    subscribed: i < subscribed,
  })),
});

describe('evaluateHealth', () => {
  it('is 200 when the cluster client is ready and every known primary is subscribed', () => {
    const report = evaluateHealth({ clusterReady: true, coverage: coverage(3, 3), isLeader: false });
    expect(report.statusCode).toBe(200);
    expect(report.body).toMatchObject({
      status: 'ok',
      subscribedPrimaries: 3,
      knownPrimaries: 3,
      isLeader: false,
    });
    expect(report.body.primaries).toHaveLength(3);
  });

  it('is 503 with partial coverage, no known primary, or a cluster client that is not ready', () => {
    expect(evaluateHealth({ clusterReady: true, coverage: coverage(2, 3), isLeader: true }).statusCode).toBe(
      503,
    );
    expect(evaluateHealth({ clusterReady: true, coverage: coverage(0, 0), isLeader: false }).statusCode).toBe(
      503,
    );
    const notReady = evaluateHealth({ clusterReady: false, coverage: coverage(3, 3), isLeader: false });
    expect(notReady).toMatchObject({ statusCode: 503, body: { status: 'unavailable', clusterReady: false } });
  });
});

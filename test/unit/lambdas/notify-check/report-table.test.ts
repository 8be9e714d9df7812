import { describe, expect, it } from 'vitest';
import { runNotifyCheck } from '../../../../lambdas/notify-check/notify-check.ts';
import { formatReportTable } from '../../../../lambdas/notify-check/report-table.ts';
import { FakeCluster, type FakeNode } from './fake-cluster.ts';
import { capture, deps } from './helpers.ts';

describe('formatReportTable', () => {
  it('shows every node, every canary, the leader, ECS, the metrics and the problems', async () => {
    const cluster = FakeCluster.build();
    (cluster.nodes[1] as FakeNode).failure = 'down';
    const report = await runNotifyCheck(deps(cluster, capture()));
    const text = formatReportTable(report);
    for (const node of cluster.nodes) expect(text).toContain(node.address);
    expect(text).toMatch(/NODE\s+ROLE\s+METHOD\s+STATUS\s+BEFORE\s+AFTER/);
    expect(text).toMatch(/127\.0\.0\.1:7000\s+primary\s+config\s+repaired\s+""\s+"gxE"/);
    expect(text).toMatch(/127\.0\.0\.1:7001\s+replica\s+config\s+unreachable/);
    expect(text).toMatch(/PRIMARY\s+SLOTS\s+CANARY\s+LATENCY\s+EXPIRE EVENTS/);
    expect(text).toMatch(/0-5460\s+verified\s+[\d.]+ ms\s+flow/);
    expect(text).toContain('precise expiry on');
    expect(text).toContain('leader: no leader record');
    expect(text).toContain('ecs: not checked: ECS_CLUSTER and ECS_SERVICE are not set');
    expect(text).toContain(
      'metrics: PrimariesTotal=3 PrimariesVerified=3 NodesConfigured=5 NodesDrifted=5 LeaderPresent=0',
    );
    expect(text).toMatch(/PROBLEMS \(2\):/);
    expect(text.endsWith('\n')).toBe(true);
  });
});

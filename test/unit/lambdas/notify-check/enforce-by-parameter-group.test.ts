import {
  DescribeCacheClustersCommand,
  DescribeCacheParametersCommand,
  DescribeReplicationGroupsCommand,
  ElastiCacheClient,
  ModifyCacheParameterGroupCommand,
} from '@aws-sdk/client-elasticache';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../core/logger.ts';
import {
  enforceByParameterGroup,
  isDefaultParameterGroup,
} from '../../../../lambdas/notify-check/enforce-by-parameter-group.ts';
import { FakeCluster } from './fake-cluster.ts';
import { mockReplicationGroup } from './helpers.ts';

const mock = mockClient(ElastiCacheClient);
afterEach(() => mock.reset());

const run = (callTimeoutMs = 500, preciseExpiry = true) =>
  enforceByParameterGroup({
    client: new ElastiCacheClient({ region: 'eu-west-1' }),
    replicationGroupId: 'rg',
    callTimeoutMs: () => callTimeoutMs,
    preciseExpiry,
    logger: silentLogger,
  });

describe('enforceByParameterGroup', () => {
  it('refuses a default group clearly and does not try to modify it', async () => {
    mockReplicationGroup(mock, FakeCluster.build(), {
      groupName: 'default.redis7.cluster.on',
      notifyValue: '',
    });
    const report = await run();
    expect(report.status).toBe('refused-default');
    expect(report.groups[0]).toMatchObject({
      name: 'default.redis7.cluster.on',
      status: 'refused-default',
      before: '',
    });
    expect(report.error).toMatch(
      /default group and cannot be modified.*create a custom group.*notify-keyspace-events=gxE/,
    );
    expect(mock.commandCalls(ModifyCacheParameterGroupCommand)).toHaveLength(0);
    // Without precise expiry the group it asks for needs no g.
    const native = await run(500, false);
    expect(native.error).toMatch(/notify-keyspace-events=xE /);
  });

  it('a default group that already has the flags is fine (nothing to modify)', async () => {
    mockReplicationGroup(mock, FakeCluster.build(), {
      groupName: 'default.valkey8.cluster.on',
      notifyValue: 'AE',
    });
    const report = await run();
    expect(report.status).toBe('ok');
  });

  it.each([
    { preciseExpiry: true, merged: 'glxKE' },
    { preciseExpiry: false, merged: 'lxKE' },
  ])(
    'merges the missing flags into the existing value and modifies the group (precise expiry $preciseExpiry)',
    async ({ preciseExpiry, merged }) => {
      mockReplicationGroup(mock, FakeCluster.build(), { groupName: 'kl-params', notifyValue: 'Kl' });
      const report = await run(500, preciseExpiry);
      expect(report.status).toBe('modified');
      const calls = mock.commandCalls(ModifyCacheParameterGroupCommand);
      expect(calls).toHaveLength(1);
      expect(calls[0]?.args[0].input.ParameterNameValues).toEqual([
        { ParameterName: 'notify-keyspace-events', ParameterValue: merged },
      ]);
      expect(report.groups[0]).toMatchObject({ before: 'Kl', after: merged });
      // Apply status of every member is reported.
      expect(report.members).toHaveLength(6);
      expect(
        report.members.every((m) => m.parameterApplyStatus === 'in-sync' && m.parameterGroup === 'kl-params'),
      ).toBe(true);
      expect(report.members[0]?.nodes[0]?.address).toBe('127.0.0.1:7000');
    },
  );

  it('follows DescribeCacheParameters markers to the page that holds the parameter', async () => {
    // 250 other parameters in pages of 100: notify-keyspace-events is on the third page.
    mockReplicationGroup(mock, FakeCluster.build(), {
      groupName: 'kl-params',
      notifyValue: 'Egx',
      filler: 250,
    });
    const report = await run();
    expect(report.status).toBe('ok');
    expect(report.groups[0]?.before).toBe('Egx');
    const pages = mock.commandCalls(DescribeCacheParametersCommand).map((c) => c.args[0].input.Marker);
    expect(pages).toEqual([undefined, 'm100', 'm200']);
    expect(mock.commandCalls(ModifyCacheParameterGroupCommand)).toHaveLength(0);
  });

  it('a group with Ex is modified to gxE with precise expiry and left alone without', async () => {
    mockReplicationGroup(mock, FakeCluster.build(), { groupName: 'kl-params', notifyValue: 'Ex' });
    expect(await run(500, false)).toMatchObject({ status: 'ok' });
    expect(mock.commandCalls(ModifyCacheParameterGroupCommand)).toHaveLength(0);
    const precise = await run(500, true);
    expect(precise.groups[0]).toMatchObject({ status: 'modified', before: 'Ex', after: 'gxE' });
  });

  it('reads every member cluster with ShowCacheNodeInfo', async () => {
    mockReplicationGroup(mock, FakeCluster.build(), { groupName: 'kl-params', notifyValue: 'Egx' });
    await run();
    const calls = mock.commandCalls(DescribeCacheClustersCommand);
    expect(calls).toHaveLength(6);
    expect(calls.every((c) => c.args[0].input.ShowCacheNodeInfo === true)).toBe(true);
  });

  it('reports a failing API as failed, without throwing', async () => {
    mock
      .on(DescribeReplicationGroupsCommand)
      .rejects(new Error('ReplicationGroupNotFoundFault: rg not found'));
    const report = await run();
    expect(report).toMatchObject({ status: 'failed', groups: [] });
    expect(report.error).toMatch(/not found/);
  });

  it('bounds a call that never answers', async () => {
    mock.on(DescribeReplicationGroupsCommand).callsFake(() => new Promise(() => {}));
    const startedAt = performance.now();
    const report = await run(100);
    expect(performance.now() - startedAt).toBeLessThan(1000);
    expect(report.status).toBe('failed');
    expect(report.error).toMatch(/did not complete within 100 ms/);
  });

  it('a failed modification is reported per group', async () => {
    mockReplicationGroup(mock, FakeCluster.build(), { groupName: 'kl-params', notifyValue: '' });
    mock.on(ModifyCacheParameterGroupCommand).rejects(new Error('InvalidCacheParameterGroupState'));
    const report = await run();
    expect(report.status).toBe('failed');
    expect(report.groups[0]).toMatchObject({ status: 'failed', before: '', after: null });
  });
});

describe('isDefaultParameterGroup', () => {
  it.each([
    ['default.redis7', true],
    ['default.valkey8.cluster.on', true],
    ['kl-default', false],
    ['my.default.group', false],
  ])('%s -> %s', (name, expected) => {
    expect(isDefaultParameterGroup(name)).toBe(expected);
  });
});

import { describe, expect, it } from 'vitest';
import type { SlotRange } from '../../../core/keys.ts';
import {
  type ClusterNode,
  liveNodes,
  livePrimaries,
  type NodeRole,
  parseClusterNodes,
  parseClusterShards,
  primariesFingerprint,
  type Shard,
  standbyNodes,
  type Topology,
} from '../../../core/topology.ts';

const shardsReply = [
  [
    'slots',
    [0, 5460],
    'nodes',
    [
      [
        'id',
        'a',
        'port',
        7000,
        'ip',
        '127.0.0.1',
        'endpoint',
        '127.0.0.1',
        'role',
        'master',
        'replication-offset',
        1,
        'health',
        'online',
      ],
      [
        'id',
        'd',
        'port',
        7003,
        'ip',
        '127.0.0.1',
        'endpoint',
        '127.0.0.1',
        'role',
        'replica',
        'replication-offset',
        1,
        'health',
        'online',
      ],
    ],
  ],
  [
    'slots',
    [5461, 10922],
    'nodes',
    [
      [
        'id',
        'b',
        'tls-port',
        7101,
        'ip',
        '10.0.0.2',
        'endpoint',
        'node-b.example.com',
        'role',
        'master',
        'health',
        'fail',
      ],
    ],
  ],
];

describe('topology parsing', () => {
  it('parses CLUSTER SHARDS (RESP2 flat maps)', () => {
    const topology = parseClusterShards(shardsReply, true);
    expect(topology.shards[0]).toEqual({
      slots: [[0, 5460]],
      primary: { id: 'a', host: '127.0.0.1', port: 7000, role: 'primary', health: 'online' },
      replicas: [{ id: 'd', host: '127.0.0.1', port: 7003, role: 'replica', health: 'online' }],
    });
    expect(topology.shards[1]?.primary).toMatchObject({
      host: 'node-b.example.com',
      port: 7101,
      health: 'failed',
    });
    expect(livePrimaries(topology).map((p) => p.id)).toEqual(['a']);
    expect(liveNodes(topology).map((p) => p.id)).toEqual(['a', 'd']);
  });

  it('parses CLUSTER SHARDS as RESP3 objects', () => {
    const topology = parseClusterShards(
      [
        {
          slots: [0, 16383],
          nodes: [{ id: 'x', port: 7000, ip: '127.0.0.1', role: 'master', health: 'online' }],
        },
      ],
      false,
    );
    expect(livePrimaries(topology)).toHaveLength(1);
  });

  it('parses CLUSTER NODES', () => {
    const text = [
      'a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460',
      'b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 [5461->-c]',
      'c 127.0.0.1:7002@17002,host-c master,fail - 0 0 3 disconnected 10923-16383',
      'd 127.0.0.1:7003@17003 slave a 0 0 1 connected',
    ].join('\n');
    const topology = parseClusterNodes(text);
    expect(livePrimaries(topology).map((p) => `${p.id}:${p.port}`)).toEqual(['a:7000', 'b:7001']);
    expect(topology.shards.find((s) => s.primary?.id === 'a')?.replicas.map((r) => r.id)).toEqual(['d']);
    expect(topology.shards.find((s) => s.primary?.id === 'c')?.primary).toMatchObject({
      host: 'host-c',
      health: 'failed',
    });
    expect(primariesFingerprint(topology)).toBe('a@127.0.0.1:7000,b@127.0.0.1:7001');
  });

  describe('standbyNodes', () => {
    const node = (id: string, port: number, role: NodeRole, health = 'online'): ClusterNode => ({
      id,
      host: '127.0.0.1',
      port,
      role,
      health,
    });
    /** A shard owning `slots`, its primary `primary` on `port`, and `replicas`. */
    const shard = (
      slots: SlotRange[],
      primary: string,
      port: number,
      replicas: ClusterNode[] = [],
    ): Shard => ({
      slots,
      primary: node(primary, port, 'primary'),
      replicas,
    });

    it('lists the replicas of the shards that own slots, then every node of a shard without slots', () => {
      const topology: Topology = {
        shards: [
          shard([[8192, 16383]], 'b', 7001, [node('rb', 7101, 'replica')]),
          // A scale-out's new shard: joined, no slot moved to it yet.
          shard([], 'n', 7009, [node('rn', 7109, 'replica')]),
          shard([[0, 8191]], 'a', 7000, [node('ra', 7100, 'replica'), node('fa', 7200, 'replica', 'failed')]),
        ],
      };
      expect(standbyNodes(topology).map((n) => n.id)).toEqual(['ra', 'rb', 'n', 'rn']);
    });

    it('leaves a shard without slots out of a reply that does not own every slot (it may be a primary with slots)', () => {
      const topology: Topology = {
        shards: [
          shard([[0, 8191]], 'a', 7000, [node('ra', 7100, 'replica')]),
          // The 7.2.0-7.2.5 empty-slots bug: the shard owning 8192-16383 is listed without them.
          shard([], 'b', 7001),
        ],
      };
      expect(standbyNodes(topology).map((n) => n.id)).toEqual(['ra']);
    });
  });
});

import { describe, expect, it } from 'vitest';
import { coversAllSlots, discoverTopology, type Topology } from '../../../core/topology.ts';

/**
 * Sequence 6 of issue 11: CLUSTER SHARDS of Redis 7.2.0-7.2.5 / Valkey <= 7.2.5 can list a shard
 * without its slots. Such a reply is not a slot map to act on.
 */

const node = (id: string, port: number) => [
  'id',
  id,
  'port',
  port,
  'ip',
  '127.0.0.1',
  'endpoint',
  '127.0.0.1',
  'role',
  'master',
  'health',
  'online',
];

const shardsReply = (lastSlots: number[]) => [
  ['slots', [0, 5460], 'nodes', [node('a', 7000)]],
  ['slots', [5461, 10922], 'nodes', [node('b', 7001)]],
  ['slots', lastSlots, 'nodes', [node('c', 7002)]],
];

const nodesText = [
  'a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460',
  'b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922',
  'c 127.0.0.1:7002@17002 master - 0 0 3 connected 10923-16383',
].join('\n');

describe('slot coverage (sequence 6)', () => {
  it('sequence 6: a slot map is complete only when every slot is owned exactly once', () => {
    const shard = (slots: [number, number][]) => ({ slots, primary: undefined, replicas: [] });
    const complete: Topology = { shards: [shard([[0, 8191]]), shard([[8192, 16383]])] };
    expect(coversAllSlots(complete)).toBe(true);
    expect(coversAllSlots({ shards: [shard([[0, 8191]]), shard([])] })).toBe(false);
    expect(coversAllSlots({ shards: [shard([[0, 8192]]), shard([[8192, 16383]])] })).toBe(false);
    expect(coversAllSlots({ shards: [shard([[0, 100]]), shard([[101, 16383]]), shard([])] })).toBe(true);
  });

  it('sequence 6: a CLUSTER SHARDS reply with a shard listed without slots falls back to CLUSTER NODES', async () => {
    const calls: string[] = [];
    const topology = await discoverTopology(
      async (command, ...args) => {
        calls.push(`${command} ${args.join(' ')}`);
        return args[0] === 'SHARDS' ? shardsReply([]) : nodesText;
      },
      { preferTls: false },
    );
    expect(calls).toEqual(['CLUSTER SHARDS', 'CLUSTER NODES']);
    expect(coversAllSlots(topology)).toBe(true);
    expect(topology.shards.map((s) => s.slots)).toContainEqual([[10923, 16383]]);
  });

  it('sequence 6: a complete CLUSTER SHARDS reply is used as is', async () => {
    const calls: string[] = [];
    const topology = await discoverTopology(
      async (command, ...args) => {
        calls.push(`${command} ${args.join(' ')}`);
        return shardsReply([10923, 16383]);
      },
      { preferTls: false },
    );
    expect(calls).toEqual(['CLUSTER SHARDS']);
    expect(coversAllSlots(topology)).toBe(true);
  });
});

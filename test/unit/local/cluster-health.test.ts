import { describe, expect, it } from 'vitest';
import {
  assessClusterHealth,
  type NodeObservation,
  parseClusterNodes,
  parseInfo,
} from '../../../local/cluster-health.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

/** CLUSTER NODES of a 2-primary + 1-replica cluster as `self` sees it; `extra` replaces lines by id. */
function nodesText(self: string, extra: Record<string, string> = {}): string {
  const lines: Record<string, string> = {
    [A]: `${A} 127.0.0.1:7000@17000 master - 0 1700000000000 1 connected 0-8191`,
    [B]: `${B} 127.0.0.1:7001@17001,host-b master - 0 1700000000000 2 connected 8192-16383`,
    [C]: `${C} 127.0.0.1:7002@17002 slave ${A} 0 1700000000000 1 connected`,
    ...extra,
  };
  return `${Object.entries(lines)
    .map(([id, line]) => {
      if (id !== self) return line;
      const parts = line.split(' ');
      parts[2] = `myself,${parts[2]}`;
      return parts.join(' ');
    })
    .join('\n')}\n`;
}

function observe(
  port: number,
  self: string,
  extra: Record<string, string> = {},
  overrides: Partial<NodeObservation> = {},
): NodeObservation {
  return {
    port,
    clusterState: 'ok',
    masterLinkStatus: self === C ? 'up' : undefined,
    nodes: parseClusterNodes(nodesText(self, extra)),
    ...overrides,
  };
}

const expected = new Set([A, B, C]);
const healthy = () => [observe(7000, A), observe(7001, B), observe(7002, C)];

describe('parseClusterNodes', () => {
  it('reads ids, addresses, roles, slots and flags (Redis 7 format with hostnames and open slots)', () => {
    const entries = parseClusterNodes(
      nodesText(A, {
        [A]: `${A} 127.0.0.1:7000@17000 master - 0 1700000000000 1 connected 0-8190 8191 [8191->-${B}]`,
        [C]: `${C} 127.0.0.1:7002@17002 slave,fail ${A} 1700000000000 1700000000000 1 disconnected`,
      }),
    );
    expect(entries).toHaveLength(3);
    expect(entries[0]).toMatchObject({
      id: A,
      host: '127.0.0.1',
      port: 7000,
      busPort: 17000,
      role: 'primary',
      isMyself: true,
      slots: [
        [0, 8190],
        [8191, 8191],
      ],
      openSlots: [`[8191->-${B}]`],
    });
    expect(entries[1]).toMatchObject({ port: 7001, busPort: 17001, isMyself: false, configEpoch: 2 });
    expect(entries[2]).toMatchObject({
      role: 'replica',
      primaryId: A,
      isFailed: true,
      isSuspected: false,
      linkState: 'disconnected',
    });
  });

  it('tells PFAIL from FAIL and recognises handshake/noaddr', () => {
    const [pfail, handshake] = parseClusterNodes(
      `${A} 127.0.0.1:7000@17000 master,fail? - 0 0 1 connected\n${B} :0@0 handshake,noaddr - 0 0 0 disconnected\n`,
    );
    expect(pfail).toMatchObject({ isSuspected: true, isFailed: false, isIncomplete: false });
    expect(handshake).toMatchObject({ isIncomplete: true, host: '', port: 0 });
  });
});

describe('parseInfo', () => {
  it('reads key:value lines and skips section headers', () => {
    const info = parseInfo('# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n\r\n');
    expect(info.get('role')).toBe('slave');
    expect(info.get('master_link_status')).toBe('up');
    expect(info.has('# Replication')).toBe(false);
  });
});

describe('assessClusterHealth', () => {
  it('is ok when every node is ok, the replica is linked and all agree on a full slot map', () => {
    const health = assessClusterHealth(healthy(), expected);
    expect(health.problems).toEqual([]);
    expect(health.ok).toBe(true);
    expect(health.agreed.map((e) => [e.id, e.role])).toEqual([
      [A, 'primary'],
      [B, 'primary'],
      [C, 'replica'],
    ]);
  });

  it('is not ok without observations', () => {
    expect(assessClusterHealth([], expected).ok).toBe(false);
  });

  it('requires cluster_state ok and a replica link up', () => {
    const [a, b, c] = healthy() as [NodeObservation, NodeObservation, NodeObservation];
    const health = assessClusterHealth(
      [{ ...a, clusterState: 'fail' }, b, { ...c, masterLinkStatus: 'down' }],
      expected,
    );
    expect(health.ok).toBe(false);
    expect(health.problems).toEqual([':7000 cluster_state:fail', ':7002 master_link_status:down']);
  });

  it('requires every node to know every expected member, none suspected or failed', () => {
    const health = assessClusterHealth(
      [
        observe(7000, A, { [C]: '' }),
        observe(7001, B, { [A]: `${A} 127.0.0.1:7000@17000 master,fail? - 0 0 1 connected 0-8191` }),
        observe(7002, C),
      ],
      expected,
    );
    expect(health.ok).toBe(false);
    expect(health.problems.join('\n')).toContain(':7000 does not know cccccccc');
    expect(health.problems.join('\n')).toContain(':7001 flags aaaaaaaa (:7000) master,fail?');
  });

  it('detects disagreement on the slot map (a node that has not learned a slot move yet)', () => {
    const moved = {
      [A]: `${A} 127.0.0.1:7000@17000 master - 0 0 1 connected 0-8190`,
      [B]: `${B} 127.0.0.1:7001@17001 master - 0 0 3 connected 8191-16383`,
    };
    const health = assessClusterHealth(
      [observe(7000, A, moved), observe(7001, B, moved), observe(7002, C)],
      expected,
    );
    expect(health.problems).toEqual([':7002 disagrees with :7000 on the slot map']);
  });

  it('reports open slots, and slots not served by an expected primary', () => {
    const withOpenSlot = {
      [A]: `${A} 127.0.0.1:7000@17000 master - 0 0 1 connected 0-8191 [8191->-${B}]`,
    };
    const open = assessClusterHealth(
      [observe(7000, A, withOpenSlot), observe(7001, B), observe(7002, C)],
      expected,
    );
    expect(open.problems).toEqual([`:7000 has open slot [8191->-${B}]`]);

    // B was killed (not expected any more) and still owns its slots: 8192 slots unserved.
    const withoutB = new Set([A, C]);
    const dead = { [B]: `${B} 127.0.0.1:7001@17001 master,fail - 0 0 2 disconnected 8192-16383` };
    const unserved = assessClusterHealth([observe(7000, A, dead), observe(7002, C, dead)], withoutB);
    expect(unserved.problems).toEqual(['8192 slots not served by a running primary']);
  });

  it('ignores stopped nodes that own nothing, e.g. a failed old primary after a promotion', () => {
    const promoted = {
      [A]: `${A} 127.0.0.1:7000@17000 master,fail - 0 0 1 disconnected`,
      [C]: `${C} 127.0.0.1:7002@17002 master - 0 0 4 connected 0-8191`,
    };
    const health = assessClusterHealth(
      [observe(7001, B, promoted), { ...observe(7002, C, promoted), masterLinkStatus: undefined }],
      new Set([B, C]),
    );
    expect(health.problems).toEqual([]);
    expect(health.agreed.find((e) => e.id === C)?.role).toBe('primary');
  });
});

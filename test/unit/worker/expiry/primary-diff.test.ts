import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../../../core/topology.ts';
import { diffPrimaries } from '../../../../worker/expiry/primary-diff.ts';

const node = (id: string, port: number, host = '127.0.0.1'): ClusterNode => ({
  id,
  host,
  port,
  role: 'primary',
  health: 'online',
});

describe('diffPrimaries', () => {
  it('reports added, removed and kept primaries', () => {
    const a = node('a', 7000);
    const b = node('b', 7001);
    const c = node('c', 7002);
    const diff = diffPrimaries([a, b], [b, c]);
    expect(diff.added.map((n) => n.id)).toEqual(['c']);
    expect(diff.removed.map((n) => n.id)).toEqual(['a']);
    expect(diff.kept.map((n) => n.id)).toEqual(['b']);
    expect(diff.changed).toBe(true);
  });

  it('sees no change when only the order differs', () => {
    const a = node('a', 7000);
    const b = node('b', 7001);
    expect(diffPrimaries([a, b], [b, a]).changed).toBe(false);
  });

  it('treats a new id at the same address, or a new address for the same id, as a replacement', () => {
    expect(diffPrimaries([node('a', 7000)], [node('z', 7000)])).toMatchObject({ changed: true });
    const moved = diffPrimaries([node('a', 7000)], [node('a', 7000, '10.0.0.9')]);
    expect(moved.added).toHaveLength(1);
    expect(moved.removed).toHaveLength(1);
  });

  it('a failover replaces the dead primary with the promoted replica', () => {
    const diff = diffPrimaries([node('a', 7000), node('b', 7001)], [node('r', 7003), node('b', 7001)]);
    expect(diff.added.map((n) => n.port)).toEqual([7003]);
    expect(diff.removed.map((n) => n.port)).toEqual([7000]);
  });
});

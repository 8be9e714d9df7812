import { type ClusterNode, nodeAddress } from '../../core/topology.ts';

/**
 * Topology diffing for the subscriptions: which primaries appeared and which left between two
 * discoveries. A primary is identified by node id and address together, so a node that restarts at
 * the same address with a new id (wiped nodes.conf) counts as one leaving and one arriving.
 */
export interface PrimaryDiff {
  readonly added: readonly ClusterNode[];
  readonly removed: readonly ClusterNode[];
  readonly kept: readonly ClusterNode[];
  readonly changed: boolean;
}

export function primaryIdentity(node: ClusterNode): string {
  return `${node.id}@${nodeAddress(node)}`;
}

export function diffPrimaries(previous: readonly ClusterNode[], next: readonly ClusterNode[]): PrimaryDiff {
  const before = new Map(previous.map((node) => [primaryIdentity(node), node]));
  const after = new Map(next.map((node) => [primaryIdentity(node), node]));
  const added = [...after].filter(([identity]) => !before.has(identity)).map(([, node]) => node);
  const removed = [...before].filter(([identity]) => !after.has(identity)).map(([, node]) => node);
  const kept = [...after].filter(([identity]) => before.has(identity)).map(([, node]) => node);
  return { added, removed, kept, changed: added.length > 0 || removed.length > 0 };
}

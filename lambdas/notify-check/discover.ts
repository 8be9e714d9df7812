import type { RedisNodeAddress } from '../../core/config.ts';
import { TopologyError } from '../../core/errors.ts';
import { discoverTopology, nodeAddress, type Topology } from '../../core/topology.ts';
import { ClusterUnreachableError } from './errors.ts';
import type { RedisNodeFactory } from './redis-nodes.ts';

export interface DiscoveredCluster {
  readonly topology: Topology;
  /** The seed whose answer was used. */
  readonly answeredBy: string;
}

/**
 * Reads the topology (CLUSTER SHARDS, CLUSTER NODES fallback, via core/topology.ts) from the first
 * seed that answers; all seeds are asked at once so a dead seed costs nothing when another answers.
 * Throws ClusterUnreachableError when none answers within `timeoutMs` (connect and query together).
 */
export async function discoverCluster(
  seeds: readonly RedisNodeAddress[],
  factory: RedisNodeFactory,
  options: { readonly preferTls: boolean; readonly timeoutMs: number },
): Promise<DiscoveredCluster> {
  const deadline = performance.now() + options.timeoutMs;
  const left = () => Math.max(1, Math.floor(deadline - performance.now()));
  const attempt = async (seed: RedisNodeAddress): Promise<DiscoveredCluster> => {
    const connection = await factory.connect(seed, left());
    try {
      const topology = await discoverTopology((command, ...args) => connection.call(command, args, left()), {
        preferTls: options.preferTls,
      });
      if (!topology.shards.some((s) => s.slots.length > 0)) {
        throw new TopologyError(`${nodeAddress(seed)} knows no shard that owns slots`);
      }
      return { topology, answeredBy: nodeAddress(seed) };
    } finally {
      await connection.close();
    }
  };
  try {
    return await Promise.any(seeds.map(attempt));
  } catch (cause) {
    throw new ClusterUnreachableError(seeds.map(nodeAddress), { cause });
  }
}

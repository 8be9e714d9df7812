import type { Cluster } from 'ioredis';
import type { RedisConnectionConfig } from '../../core/config.ts';
import { TopologyError } from '../../core/errors.ts';
import { keySlot } from '../../core/key-slot.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import { closeQuietly, createClusterClient } from '../../core/redis-client.ts';
import { coversAllSlots, type Topology } from '../../core/topology.ts';
import { type LeaderRecordStore, RedisLeaderRecordStore } from './leader-record-store.ts';
import type { Lease } from './lease.ts';
import { QuorumLease } from './quorum-lease.ts';
import { placeQuorumMembers, QUORUM_MEMBER_COUNT, slotOwningShards } from './quorum-placement.ts';
import { RedisReleasedChannel, type ReleasedChannel } from './released-channel.ts';
import { SingleKeyLease } from './single-key-lease.ts';

export interface LeaderElectionDeps {
  /** The shared Cluster client: lease votes, fencing, record. Owned by the caller. */
  readonly cluster: Cluster;
  /** For the released channel's own subscriber connection. */
  readonly redis: RedisConnectionConfig;
  readonly keys: KeyspaceKeys;
  readonly logger: Logger;
  readonly topology: () => Promise<Topology>;
  /** Quorum mode: how often the placement is re-derived (QuorumLease). @default 10000 */
  readonly placementCheckIntervalMs?: number;
}

export interface LeaderElection {
  readonly lease: Lease;
  readonly releasedChannel: ReleasedChannel;
  readonly recordStore: LeaderRecordStore;
  /** Unsubscribes and closes the subscriber connection (not the shared Cluster client). */
  close(): Promise<void>;
}

/**
 * Builds the pieces a LeaderElector needs from one topology read, which must own every slot
 * (`coversAllSlots`; otherwise TopologyError, and the worker exits to be restarted). The lease mode follows the number
 * of shards that own slots -- counted whether or not their primary is up right now, because a worker
 * that starts during a failover must choose what its peers chose:
 * - 3 or more: QuorumLease over 3 members on 3 different shards (quorum-placement.ts);
 * - fewer: SingleKeyLease on `keys.lease` with WAIT for a replica.
 * Workers only disagree on the mode while a reshard crosses the 3-shard line; see
 * docs/leader-election.md for the procedure.
 */
export async function createLeaderElection(deps: LeaderElectionDeps): Promise<LeaderElection> {
  const { cluster, keys, logger, topology } = deps;
  const current = await topology();
  if (!coversAllSlots(current)) {
    // A shard listed without its slots (CLUSTER SHARDS of Redis 7.2.0-7.2.5) would be miscounted
    // and could pick another mode or placement than the peers use: refuse rather than guess.
    throw new TopologyError(
      `the topology read at start does not own all 16384 slots (${current.shards.length} shards listed); not choosing a lease mode from it`,
    );
  }
  const shards = slotOwningShards(current);
  let lease: Lease;
  if (shards.length >= QUORUM_MEMBER_COUNT) {
    lease = new QuorumLease({
      cluster,
      keys,
      logger,
      topology,
      placement: placeQuorumMembers(keys, current),
      ...(deps.placementCheckIntervalMs === undefined
        ? {}
        : { placementCheckIntervalMs: deps.placementCheckIntervalMs }),
    });
  } else {
    const slot = keySlot(keys.lease);
    const shard = shards.find((s) => s.slots.some(([first, last]) => slot >= first && slot <= last));
    const replicas = shard?.replicas.filter((r) => r.health !== 'failed').length ?? 0;
    lease = new SingleKeyLease({ cluster, keys, knownReplicas: () => replicas });
  }
  logger.info('lease.configured', { shards: shards.length, ...lease.describe() });

  const subscriber = createClusterClient(deps.redis, { logger, name: 'leader-released' });
  let releasedChannel: RedisReleasedChannel;
  try {
    releasedChannel = await RedisReleasedChannel.open({
      subscriber,
      publisher: cluster,
      channel: keys.releasedChannel,
      logger,
    });
  } catch (error) {
    await closeQuietly(subscriber);
    throw error;
  }
  let closed = false;
  return {
    lease,
    releasedChannel,
    recordStore: new RedisLeaderRecordStore(cluster, keys.leader),
    async close() {
      if (closed) return;
      closed = true;
      await releasedChannel.close();
      await closeQuietly(subscriber);
    },
  };
}

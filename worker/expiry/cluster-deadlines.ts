import type { Cluster } from 'ioredis';

/**
 * PEXPIRETIME of each key through a Cluster client: the tracker's lookups and the toucher's touches
 * (expiry-tracker.ts, expiry-toucher.ts). The Cluster client routes each key to its slot's current
 * primary and follows MOVED and ASK. Give it a client of its own with auto-pipelining on
 * (core/redis-client.ts `autoPipelining`): a batch of a thousand touches then leaves as one write per
 * primary, and never queues in front of the lease's renewals.
 */
export function clusterDeadlines(
  cluster: Cluster,
): (keys: readonly Buffer[]) => Promise<readonly (number | Error)[]> {
  return (keys) =>
    Promise.all(
      keys.map((key) =>
        cluster.pexpiretime(key).then(
          (reply) => reply,
          (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
        ),
      ),
    );
}

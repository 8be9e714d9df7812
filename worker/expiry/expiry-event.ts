/**
 * One `expired` notification as the fan-in hands it on: the key's exact bytes, which primary
 * published it, and when this worker received it. It carries no identity: an event's `seq` and `id`
 * are given by the leader's shared numbering (worker/replay/replay-coordinator.ts, EventMeta).
 */
export interface ExpiryEvent {
  readonly key: Buffer;
  /** `host:port` of the publishing primary. */
  readonly node: string;
  readonly nodeId: string;
  /** Wall clock (ms since the epoch) at receipt: latencies that leave the process are measured from it. */
  readonly receivedAt: number;
  /** Monotonic clock (Clock.monotonicMs) at receipt. */
  readonly receivedAtMono: number;
  /**
   * This worker's count of the notifications it received from this node (1, 2, ..., filtered ones
   * included), in the order the node published them. Local to the worker and to its process: a
   * diagnostic of receipt order, never an identity.
   */
  readonly receivedIndex: number;
  /**
   * For a key the deadline index tracked (on-time expiry, worker/expiry/expiry-tracker.ts): its
   * deadline in the primary's clock (ms since the epoch), as PEXPIRETIME gave it.
   */
  readonly deadlineMs?: number;
  /** The same instant in this worker's wall clock, by its estimate of the primary's clock offset. */
  readonly deadlineLocalMs?: number;
}

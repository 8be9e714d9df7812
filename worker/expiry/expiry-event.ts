/**
 * One `expired` notification as the fan-in hands it on: the key's exact bytes, which primary
 * published it, and when this worker received it. `seq` counts the events received from one node by
 * this worker (1, 2, ...), in the order the node published them; it is local to the worker.
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
  readonly seq: number;
}

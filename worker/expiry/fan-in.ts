import type { Clock } from '../../core/clock.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import type { ExpiryEvent } from './expiry-event.ts';
import type { KeyMatcher } from './key-pattern.ts';

/**
 * Merges the per-primary subscriptions into one stream of ExpiryEvents. Each raw notification is
 * numbered per node (`seq`), counted (`EventsReceived`: every event this worker receives, leader or
 * not) and, when `accepts` takes its key (the pipeline's one filter), stamped on arrival (wall and
 * monotonic clock) and handed to the sink synchronously, in arrival order. Node.js delivers socket
 * data on one thread, so the order within a node is the order that node published in; across nodes
 * it is arrival order.
 */
export interface FanInOptions {
  readonly clock: Clock;
  readonly metrics: EmfMetrics;
  /** The key filter (key-pattern.ts `compileKeyFilter`): events it refuses go nowhere. */
  readonly accepts: KeyMatcher;
  readonly sink: (event: ExpiryEvent) => void;
}

export interface NodeRef {
  readonly id: string;
  /** `host:port`. */
  readonly address: string;
}

export class FanIn {
  /** Per node id; kept across reconnects so `seq` never restarts for a node within this process. */
  private readonly sequences = new Map<string, number>();

  constructor(private readonly options: FanInOptions) {}

  /** Receives one `expired` notification (the key's bytes) from `node`. */
  push(node: NodeRef, key: Buffer): void {
    const seq = (this.sequences.get(node.id) ?? 0) + 1;
    this.sequences.set(node.id, seq);
    this.options.metrics.count('EventsReceived');
    if (!this.options.accepts(key)) return;
    this.options.sink({
      key,
      node: node.address,
      nodeId: node.id,
      receivedAt: this.options.clock.wallMs(),
      receivedAtMono: this.options.clock.monotonicMs(),
      seq,
    });
  }
}

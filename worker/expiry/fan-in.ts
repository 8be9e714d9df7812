import type { Clock } from '../../core/clock.ts';
import { FAN_IN_DEFAULTS } from '../../core/defaults.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import type { ExpiryEvent } from './expiry-event.ts';
import type { TrackedDeadline } from './expiry-tracker.ts';
import type { KeyMatcher } from './key-pattern.ts';
import { SLICE_CHECK_EVERY } from './turn-slice.ts';

/**
 * Merges the per-primary subscriptions into one stream of ExpiryEvents. Each raw notification is
 * indexed per node (`receivedIndex`, receipt order, not an identity), counted (`EventsReceived`: every event this worker receives, leader or
 * not) and, when `accepts` takes its key (the pipeline's one filter), stamped on arrival (wall and
 * monotonic clock) and queued for the sink. Node.js delivers socket data on one thread, so the order
 * within a node is the order that node published in; across nodes it is arrival order; the sink gets
 * the events in that order.
 *
 * Why a queue: ioredis hands over a whole socket read of messages in one callback, and libuv reads
 * every ready socket before it runs timers, so a burst (thousands of keys expiring in one cycle) would
 * run the whole pipeline -- window, hand-out, handler, log line -- for all of it before the lease
 * renewal's timer could fire. `push` does only the cheap part; the sink runs in batches of at most
 * `batchSize` events and about `timeSliceMs`, one batch per turn of the event loop (setImmediate), so
 * timers run between batches. `flush()` hands over everything queued at once: call it before acting
 * on the stream's position (a gap of a subscription is noted after the events that came before it).
 */
export interface FanInOptions {
  readonly clock: Clock;
  readonly metrics: EmfMetrics;
  /** The key filter (key-pattern.ts `compileKeyFilter`): events it refuses go nowhere. */
  readonly accepts: KeyMatcher;
  readonly sink: (event: ExpiryEvent) => void;
  /**
   * On-time expiry: ends the tracked entry of an accepted key and gives its deadline
   * (expiry-tracker.ts `takeDeadline`), so the event carries it. Runs on every worker, followers
   * included, so every index forgets the key. @default none (precise expiry off)
   */
  readonly takeDeadline?: (key: Buffer) => TrackedDeadline | undefined;
  /** Events handed to the sink per turn of the event loop, at most. @default FAN_IN_DEFAULTS.batchSize (1024) */
  readonly batchSize?: number;
  /**
   * A turn's hand-over also ends once it has run this long (monotonic clock, read every
   * SLICE_CHECK_EVERY events), whatever the batch size: a burst of slow events (a cold JIT, a loaded
   * machine) then delays a due timer -- the next primary's touch, a lease renewal -- by about a slice
   * and the calls it started, not by a whole batch. @default FAN_IN_DEFAULTS.timeSliceMs (2)
   */
  readonly timeSliceMs?: number;
}

export interface NodeRef {
  readonly id: string;
  /** `host:port`. */
  readonly address: string;
}

export class FanIn {
  /** Per node id; kept across reconnects so `receivedIndex` never restarts for a node within this process. */
  private readonly receivedCounts = new Map<string, number>();
  private readonly batchSize: number;
  private readonly timeSliceMs: number;
  private queued: ExpiryEvent[] = [];
  /** Index of the next event of `queued` to hand over. */
  private next = 0;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly options: FanInOptions) {
    this.batchSize = options.batchSize ?? FAN_IN_DEFAULTS.batchSize;
    if (!(this.batchSize >= 1)) throw new RangeError(`batchSize must be >= 1, got ${this.batchSize}`);
    this.timeSliceMs = options.timeSliceMs ?? FAN_IN_DEFAULTS.timeSliceMs;
    if (!(this.timeSliceMs > 0)) throw new RangeError(`timeSliceMs must be > 0, got ${this.timeSliceMs}`);
  }

  /** Receives one `expired` notification (the key's bytes) from `node`. */
  push(node: NodeRef, key: Buffer): void {
    const receivedIndex = (this.receivedCounts.get(node.id) ?? 0) + 1;
    this.receivedCounts.set(node.id, receivedIndex);
    this.options.metrics.count('EventsReceived');
    if (!this.options.accepts(key)) return;
    const tracked = this.options.takeDeadline?.(key);
    // One literal with every field (no spread: an object spread costs microseconds per event).
    this.queued.push({
      key,
      node: node.address,
      nodeId: node.id,
      receivedAt: this.options.clock.wallMs(),
      receivedAtMono: this.options.clock.monotonicMs(),
      receivedIndex,
      deadlineMs: tracked?.deadlineMs,
      deadlineLocalMs: tracked?.deadlineLocalMs,
    });
    this.scheduled ??= setImmediate(() => this.runBatch());
  }

  /** Events received and not yet handed to the sink. */
  get pending(): number {
    return this.queued.length - this.next;
  }

  /** Hands every queued event to the sink now, in order. */
  flush(): void {
    this.handOver(Number.POSITIVE_INFINITY);
  }

  /** Drops what is queued and stops (shutdown). */
  close(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.queued = [];
    this.next = 0;
  }

  private runBatch(): void {
    this.scheduled = undefined;
    this.handOver(this.batchSize, this.options.clock.monotonicMs() + this.timeSliceMs);
    if (this.pending > 0) this.scheduled = setImmediate(() => this.runBatch());
  }

  private handOver(limit: number, untilMono = Number.POSITIVE_INFINITY): void {
    let handed = 0;
    // The sink may push re-entrantly (never in practice) or flush: read `next` each time.
    while (this.next < this.queued.length && handed < limit) {
      const event = this.queued[this.next++] as ExpiryEvent;
      handed++;
      this.options.sink(event);
      if (handed % SLICE_CHECK_EVERY === 0 && this.options.clock.monotonicMs() >= untilMono) break;
    }
    if (this.next >= this.queued.length) {
      this.queued = [];
      this.next = 0;
    } else if (this.next > 4096 && this.next * 2 > this.queued.length) {
      // Compacted only once the handed-over part is most of the array: amortised O(1) per event
      // (compacting every few batches would copy a long burst's remainder over and over).
      this.queued = this.queued.slice(this.next);
      this.next = 0;
    }
  }
}

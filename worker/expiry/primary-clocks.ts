import type { Clock } from '../../core/clock.ts';
import { PRIMARY_CLOCKS_DEFAULTS } from '../../core/defaults.ts';
import type { Logger } from '../../core/logger.ts';
import { SlotOwners } from '../../core/slot-owners.ts';
import type { Topology } from '../../core/topology.ts';

/**
 * Each primary's clock as seen from this worker (issue 13, "touch rules"). Redis keeps a key's
 * deadline in its own wall clock and expires it only once that clock is past the deadline, so the
 * toucher touches at `deadline + 1 ms - offset` in this worker's wall clock, where
 * `offset = primary clock - local clock`.
 *
 * - The offset is estimated with `TIME`: `samples` round trips, the one with the shortest round trip
 *   kept, its server time compared with the midpoint of the round trip (so the one-way delays cancel
 *   to within half the round trip).
 * - Estimated when a primary is first seen owning slots, again after a failover (a new primary has
 *   another clock: a slot's owner changed id), and every `reestimateMs` (drift).
 * - Until a primary's estimate is in, its offset is 0 (the nodes of ElastiCache are NTP-synchronised;
 *   a wrong offset only makes a touch early, which the toucher retries, or late by the error).
 * - Keys map to primaries through the slot map of the last topology (`update`).
 */
export interface PrimaryClocksOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** `TIME` on the primary with this node id: [seconds, microseconds]. */
  readonly readTime: (nodeId: string) => Promise<readonly [string | number, string | number]>;
  /** Round trips per estimate. @default 3 */
  readonly samples?: number;
  /** Re-estimate every primary this often. @default 60000 */
  readonly reestimateMs?: number;
}

interface Estimate {
  readonly offsetMs: number;
  readonly roundTripMs: number;
  readonly atMonoMs: number;
}

export class PrimaryClocks {
  private slots = new SlotOwners({ shards: [] });
  private readonly estimates = new Map<string, Estimate>();
  private readonly estimating = new Set<string>();
  private closed = false;

  constructor(private readonly options: PrimaryClocksOptions) {}

  /** Takes the slot map of a discovery; starts estimates for primaries new to it or due again. */
  update(topology: Topology): void {
    if (this.closed) return;
    this.slots = new SlotOwners(topology);
    const owners = this.slots.primaries.map((primary) => primary.id);
    const now = this.options.clock.monotonicMs();
    const reestimateMs = this.options.reestimateMs ?? PRIMARY_CLOCKS_DEFAULTS.reestimateMs;
    for (const nodeId of owners) {
      const estimate = this.estimates.get(nodeId);
      if (estimate === undefined || now - estimate.atMonoMs >= reestimateMs) this.estimate(nodeId);
    }
    for (const nodeId of this.estimates.keys()) if (!owners.includes(nodeId)) this.estimates.delete(nodeId);
  }

  /** The node id owning `key`'s slot in the last topology, or undefined. */
  ownerOf(key: Uint8Array | string): string | undefined {
    return this.slots.ownerOf(key)?.id;
  }

  /** `primary clock - local clock` for the primary owning `key`, in ms (0 until estimated). */
  offsetForKey(key: Uint8Array | string): number {
    const owner = this.ownerOf(key);
    return owner === undefined ? 0 : (this.estimates.get(owner)?.offsetMs ?? 0);
  }

  /** The current estimate of a primary (for logs and tests). */
  offsetOf(nodeId: string): number | undefined {
    return this.estimates.get(nodeId)?.offsetMs;
  }

  close(): void {
    this.closed = true;
  }

  private estimate(nodeId: string): void {
    if (this.estimating.has(nodeId)) return;
    this.estimating.add(nodeId);
    this.sample(nodeId).then(
      (estimate) => {
        this.estimating.delete(nodeId);
        if (this.closed || !this.slots.primaries.some((primary) => primary.id === nodeId)) return;
        const previous = this.estimates.get(nodeId);
        this.estimates.set(nodeId, estimate);
        if (previous === undefined || Math.abs(previous.offsetMs - estimate.offsetMs) >= 5) {
          this.options.logger.info('expiry.clock_offset', {
            nodeId,
            offsetMs: Math.round(estimate.offsetMs * 10) / 10,
            roundTripMs: Math.round(estimate.roundTripMs * 10) / 10,
          });
        }
      },
      (error: unknown) => {
        this.estimating.delete(nodeId);
        // Kept at its previous estimate (or 0); the next discovery after `reestimateMs` tries again.
        if (!this.closed) this.options.logger.debug('expiry.clock_offset_failed', { nodeId, error });
      },
    );
  }

  private async sample(nodeId: string): Promise<Estimate> {
    const { clock, readTime } = this.options;
    const samples = this.options.samples ?? PRIMARY_CLOCKS_DEFAULTS.samples;
    let best: Estimate | undefined;
    for (let i = 0; i < samples; i++) {
      const sentWall = clock.wallMs();
      const sentMono = clock.monotonicMs();
      const [seconds, micros] = await readTime(nodeId);
      const roundTripMs = clock.monotonicMs() - sentMono;
      const serverMs = Number(seconds) * 1000 + Number(micros) / 1000;
      const offsetMs = serverMs - (sentWall + roundTripMs / 2);
      if (best === undefined || roundTripMs < best.roundTripMs) {
        best = { offsetMs, roundTripMs, atMonoMs: clock.monotonicMs() };
      }
    }
    return best as Estimate;
  }
}

import type { Cluster } from 'ioredis';
import type { Clock } from '../../core/clock.ts';
import type { KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import type { StoppedLeadingReason } from './leadership.ts';

/**
 * Coverage-aware leadership (issue 7): a worker that misses a primary would miss that primary's
 * events, so
 * - a worker without full coverage does not take the lease while a fully covered worker exists;
 * - a leader that has lacked full coverage for longer than `graceMs` hands over when a fully covered
 *   follower exists;
 * - when no worker has full coverage (a primary failing over), the leader keeps leading and anyone
 *   may acquire: an incomplete leader is better than none.
 *
 * Every worker publishes its state every `publishIntervalMs` into the sorted set `keys.coverage`
 * (member workerId, score: wall-clock ms; removed when not fully covered). A peer counts as covered
 * when its entry is younger than `freshnessMs`. Clocks of ECS tasks are NTP-synchronised to well
 * under the 2 s freshness; a wrong clock only delays or hastens a coverage hand-over, never grants
 * the lease to two workers (the lease alone does that).
 */
export interface CoverageRegistryOptions {
  readonly cluster: Cluster;
  readonly keys: KeyspaceKeys;
  readonly workerId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This worker's coverage now. */
  readonly isCovered: () => boolean;
  readonly graceMs?: number;
  readonly publishIntervalMs?: number;
  readonly freshnessMs?: number;
}

export class CoverageRegistry {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private coveredPeers = 0;
  private peersReadAtMono = Number.NEGATIVE_INFINITY;
  private uncoveredSinceMono: number | undefined;
  private lastFailure: string | undefined;
  private readonly graceMs: number;
  private readonly publishIntervalMs: number;
  private readonly freshnessMs: number;

  constructor(private readonly options: CoverageRegistryOptions) {
    this.graceMs = options.graceMs ?? 2000;
    this.publishIntervalMs = options.publishIntervalMs ?? 500;
    this.freshnessMs = options.freshnessMs ?? 2000;
    if (!(this.freshnessMs > this.publishIntervalMs))
      throw new RangeError('freshnessMs must exceed publishIntervalMs');
  }

  start(): void {
    if (this.timer) return;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.publishIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    try {
      await this.options.cluster.zrem(this.options.keys.coverage, this.options.workerId);
    } catch {
      // Entries age out after freshnessMs anyway.
    }
  }

  /** For LeaderElector.canLead. */
  canLead(): boolean {
    return this.options.isCovered() || !this.peerCovered();
  }

  /** For LeaderElector.shouldStepDown. */
  shouldStepDown(): StoppedLeadingReason | undefined {
    this.observe();
    const since = this.uncoveredSinceMono;
    if (since === undefined) return undefined;
    if (this.options.clock.monotonicMs() - since < this.graceMs) return undefined;
    return this.peerCovered() ? 'coverage-lost' : undefined;
  }

  private peerCovered(): boolean {
    // A stale read (Redis unreachable) says nothing about the peers: assume none.
    const fresh = this.options.clock.monotonicMs() - this.peersReadAtMono < this.freshnessMs;
    return fresh && this.coveredPeers > 0;
  }

  private observe(): boolean {
    const covered = this.options.isCovered();
    if (covered) this.uncoveredSinceMono = undefined;
    else this.uncoveredSinceMono ??= this.options.clock.monotonicMs();
    return covered;
  }

  private tick(): void {
    if (this.inFlight) return;
    this.inFlight = this.publishAndRead().finally(() => {
      this.inFlight = undefined;
    });
  }

  private async publishAndRead(): Promise<void> {
    const { cluster, keys, workerId, clock, logger } = this.options;
    const covered = this.observe();
    const nowWall = clock.wallMs();
    const pipeline = cluster.pipeline();
    if (covered) pipeline.zadd(keys.coverage, nowWall, workerId);
    else pipeline.zrem(keys.coverage, workerId);
    pipeline.zremrangebyscore(keys.coverage, '-inf', nowWall - 10 * this.freshnessMs);
    pipeline.pexpire(keys.coverage, 10 * this.freshnessMs);
    pipeline.zrangebyscore(keys.coverage, nowWall - this.freshnessMs, '+inf');
    try {
      const results = await pipeline.exec();
      const last = results?.at(-1);
      if (!last || last[0]) throw last?.[0] ?? new Error('no reply');
      const members = last[1] as string[];
      this.coveredPeers = members.filter((m) => m !== workerId).length;
      this.peersReadAtMono = clock.monotonicMs();
      this.lastFailure = undefined;
    } catch (error) {
      // Once per distinct cause at warn (a missing ACL permission shows), then at debug.
      const message = error instanceof Error ? error.message : String(error);
      if (message === this.lastFailure) logger.debug('coverage.publish_failed', { error });
      else logger.warn('coverage.publish_failed', { error });
      this.lastFailure = message;
    }
  }
}

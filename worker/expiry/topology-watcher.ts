import type { Clock } from '../../core/clock.ts';
import { TOPOLOGY_DEFAULTS } from '../../core/defaults.ts';
import { withTimeout } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import {
  type ClusterNode,
  livePrimaries,
  nodeAddress,
  standbyNodes,
  type Topology,
} from '../../core/topology.ts';
import { diffPrimaries, primaryIdentity } from './primary-diff.ts';

/**
 * Keeps the list of primaries current: discovers the topology on a timer (every `intervalMs`, one
 * CLUSTER SHARDS round trip) and at once when asked (`requestSync`, called on a subscriber's connection
 * error or close), never two discoveries at a time and never closer than `minSpacingMs`.
 *
 * After every successful discovery `onPrimaries` receives the known primaries (live, owning slots)
 * and the known standby nodes (`standbyNodes`: the live replicas of those shards, and the live nodes
 * of a shard that owns no slots yet), passed as replicas: the pool subscribes to both, so that a
 * replica's first events after a promotion, or a new shard's after a scale-out moved its first slot,
 * reach a subscription held in advance. A node present before and absent now (under either role) is
 * kept, in its last role, for `removalGraceSyncs` more discoveries before it is dropped: the node
 * answering CLUSTER SHARDS is random and may briefly hold an older view during a failover, and
 * dropping a live primary's subscription on such a view would lose its events. A node listed under the other role is not absent: it changed role (a failover).
 * A failed discovery, or one that lists no primary at all, changes nothing (logged `topology.failed`,
 * once per distinct error until a discovery succeeds).
 */
export interface TopologyWatcherOptions {
  readonly discover: () => Promise<Topology>;
  readonly onPrimaries: (primaries: readonly ClusterNode[], replicas: readonly ClusterNode[]) => void;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly intervalMs?: number;
  readonly discoverTimeoutMs?: number;
  readonly minSpacingMs?: number;
  readonly removalGraceSyncs?: number;
}

export const DEFAULT_TOPOLOGY_INTERVAL_MS = TOPOLOGY_DEFAULTS.intervalMs;

export class TopologyWatcher {
  private readonly intervalMs: number;
  private readonly discoverTimeoutMs: number;
  private readonly minSpacingMs: number;
  private readonly removalGraceSyncs: number;
  private known: ClusterNode[] = [];
  private knownReplicas: ClusterNode[] = [];
  /** Discoveries in a row that did not list a known node (either role), by identity. */
  private readonly absences = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private syncRequested = false;
  private lastSyncStartMs = Number.NEGATIVE_INFINITY;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private lastFailure: string | undefined;
  private everSynced = false;

  constructor(private readonly options: TopologyWatcherOptions) {
    this.intervalMs = options.intervalMs ?? DEFAULT_TOPOLOGY_INTERVAL_MS;
    this.discoverTimeoutMs = options.discoverTimeoutMs ?? 2000;
    this.minSpacingMs = options.minSpacingMs ?? 100;
    this.removalGraceSyncs = options.removalGraceSyncs ?? 1;
  }

  /** The known primaries after the last successful discovery (empty before the first). */
  get primaries(): readonly ClusterNode[] {
    return this.known;
  }

  /** Starts the timer with an immediate first discovery. Idempotent; no-op after stop. */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'running';
    this.schedule(0);
  }

  /** Asks for a discovery as soon as the spacing allows (coalesced with one in flight). */
  requestSync(): void {
    if (this.state !== 'running') return;
    if (this.syncing) {
      this.syncRequested = true;
      return;
    }
    const sinceLastMs = this.options.clock.monotonicMs() - this.lastSyncStartMs;
    this.schedule(Math.max(0, this.minSpacingMs - sinceLastMs));
  }

  /** Stops the timer and waits for a discovery in flight. Idempotent. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.syncing;
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), delayMs);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.state !== 'running' || this.syncing) return;
    this.syncRequested = false;
    this.lastSyncStartMs = this.options.clock.monotonicMs();
    this.syncing = this.syncOnce().finally(() => {
      this.syncing = undefined;
      if (this.state === 'running') this.schedule(this.syncRequested ? this.minSpacingMs : this.intervalMs);
    });
  }

  private async syncOnce(): Promise<void> {
    let discovered: ClusterNode[];
    let discoveredReplicas: ClusterNode[];
    try {
      const topology = await withTimeout(
        this.options.discover(),
        this.discoverTimeoutMs,
        'topology discovery',
      );
      discovered = livePrimaries(topology);
      discoveredReplicas = standbyNodes(topology);
    } catch (error) {
      this.reportFailure(error instanceof Error ? error.message : String(error), error);
      return;
    }
    if (this.state !== 'running') return;
    if (discovered.length === 0) {
      this.reportFailure('the topology lists no live primary owning slots', undefined);
      return;
    }
    this.lastFailure = undefined;
    const present = new Set([...discovered, ...discoveredReplicas].map(primaryIdentity));
    const next = [...discovered, ...this.retained(this.known, present)];
    const nextReplicas = [...discoveredReplicas, ...this.retained(this.knownReplicas, present)];
    for (const identity of present) this.absences.delete(identity);
    const diff = diffPrimaries(this.known, next);
    const replicaDiff = diffPrimaries(this.knownReplicas, nextReplicas);
    this.known = next;
    this.knownReplicas = nextReplicas;
    if (diff.changed || replicaDiff.changed || !this.everSynced) {
      this.options.logger.info('topology.changed', {
        primaries: next.map(nodeAddress),
        added: diff.added.map(nodeAddress),
        removed: diff.removed.map(nodeAddress),
        replicas: nextReplicas.map(nodeAddress),
      });
    }
    this.everSynced = true;
    this.options.onPrimaries(next, nextReplicas);
  }

  /** Known nodes absent from this discovery and still within their removal grace. */
  private retained(known: readonly ClusterNode[], present: ReadonlySet<string>): ClusterNode[] {
    const retained: ClusterNode[] = [];
    for (const node of known) {
      const identity = primaryIdentity(node);
      if (present.has(identity)) continue;
      const absences = (this.absences.get(identity) ?? 0) + 1;
      if (absences > this.removalGraceSyncs) {
        this.absences.delete(identity);
      } else {
        this.absences.set(identity, absences);
        retained.push(node);
      }
    }
    return retained;
  }

  private reportFailure(message: string, error: unknown): void {
    if (message === this.lastFailure) return;
    this.lastFailure = message;
    this.options.logger.warn('topology.failed', {
      error: error ?? message,
      knownPrimaries: this.known.length,
    });
  }
}

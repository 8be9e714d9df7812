import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import { type ClusterNode, type NodeRole, nodeAddress } from '../../core/topology.ts';
import type { NodeRef } from './fan-in.ts';
import { primaryIdentity } from './primary-diff.ts';

/**
 * One dedicated subscriber connection per known node, primaries and replicas (keyspace events are
 * node-local, and a Cluster client's subscribe listens on one node only). `sync` is given the known
 * primaries and replicas after each topology discovery: it opens a subscriber for each new node,
 * closes those that left, and keeps the connection of a node that changed role.
 *
 * Why replicas (issue 11, sequence 1): a replica publishes no `expired` until it is promoted; from the
 * instant of its promotion it does. A subscription held in advance receives those first events; one
 * opened after the next discovery saw the promotion would miss everything published in between (a
 * graceful CLUSTER FAILOVER lost ~0.6 s of the shard's events that way). The cost is one connection
 * per replica (2x the subscriber connections with one replica per shard), carrying no traffic until
 * its node is promoted besides the heartbeat.
 *
 * The same holds for a new shard (a scale-out): its nodes join the cluster owning no slots, and the
 * topology passes them in the replica role (`standbyNodes` in core/topology.ts) until slots move to
 * them; subscribed in advance, the new primary's first events are not missed, and its promotion to
 * the primary role is no gap.
 *
 * Events are accepted from every subscribed node whatever role the last discovery gave it: a node
 * promoted since publishes before any discovery says so.
 *
 * Coverage is "primaries subscribed out of primaries known" (replicas do not count). It is published
 * as the gauge `SubscribedPrimaries` and read by the health endpoint and the election (`canLead`).
 *
 * Gaps (`onGap`): a primary's subscription that was up and went down; a replica seen promoted
 * whose subscription was not up without interruption since the previous discovery (its first events
 * as a primary may have been missed); and a primary first seen after the first discovery (a
 * scale-out moved slots to it), reported when its subscription first comes up: it published from its
 * first slot on, and a peer that subscribed sooner holds what this worker missed before then. A
 * replica's subscription that drops is no gap by itself. The primaries of the first discovery are
 * none: this worker started then, and the election prefers a peer covered for longer
 * (worker/leader/coverage-registry.ts).
 *
 * Logs: `subscription.up` / `subscription.down` (`node`, `nodeId`, `role`, and `reason` for down:
 * `connection-closed`, `stalled`, `removed`, `shutdown`), `subscription.role_changed` (`node`,
 * `nodeId`, `role`, `subscribed`).
 */

/** What a subscriber connection reports to the pool. */
export interface SubscriberEvents {
  /** One `expired` notification: the key's exact bytes. */
  onMessage(key: Buffer): void;
  /** One `expire` notification (a TTL set or changed; only when the connection subscribes to them). */
  onTtlSet(key: Buffer): void;
  /** The subscription is confirmed (after the first connect or a reconnect). */
  onUp(): void;
  /** The subscription was lost (`connection-closed`, or `stalled`: no byte read within the bound). */
  onDown(reason: string): void;
  /** Something is wrong with the connection (error, close): the topology may have changed. */
  onTrouble(): void;
}

export interface SubscriberConnection {
  /** Closes the connection for good; no event is reported afterwards. Idempotent. */
  close(): Promise<void>;
}

export type SubscriberFactory = (node: ClusterNode, events: SubscriberEvents) => SubscriberConnection;

export interface PrimaryCoverage {
  readonly node: string;
  readonly nodeId: string;
  readonly subscribed: boolean;
}

export interface Coverage {
  readonly subscribed: number;
  readonly known: number;
  /** At least one primary is known and every known primary is subscribed. */
  readonly complete: boolean;
  readonly primaries: readonly PrimaryCoverage[];
}

export interface SubscriberPoolOptions {
  readonly connect: SubscriberFactory;
  readonly logger: Logger;
  readonly metrics: EmfMetrics;
}

/** One `expired` notification from a subscribed node: the key's exact bytes. */
export type PoolEventListener = (node: NodeRef, key: Buffer) => void;
/** One `expire` notification (a TTL was set) from a subscribed primary. */
export type PoolTtlListener = (node: NodeRef, key: Buffer) => void;
/**
 * This worker may have missed events of that primary: its subscription was up and went down, or a
 * replica was seen promoted whose subscription was not up throughout since the previous discovery.
 */
export type PoolGapListener = (node: NodeRef) => void;

interface Entry {
  readonly ref: NodeRef;
  role: NodeRole;
  connection: SubscriberConnection | undefined;
  up: boolean;
  /** Up without interruption since the previous `sync` (decides whether a promotion is a gap). */
  upSinceLastSync: boolean;
  /** A primary first seen after the first discovery: its first `up` is a gap (see the class comment). */
  gapAtFirstUp: boolean;
}

export class SubscriberPool {
  private readonly entries = new Map<string, Entry>();
  /** Closes started by `sync` (a primary left); awaited by `close`. */
  private readonly closing = new Set<Promise<void>>();
  private closed = false;
  /** The first `sync` happened: a primary added from then on is new to the cluster, not to this worker. */
  private synced = false;
  private readonly eventListeners: PoolEventListener[] = [];
  private readonly gapListeners: PoolGapListener[] = [];
  private readonly troubleListeners: (() => void)[] = [];
  private readonly ttlListeners: PoolTtlListener[] = [];

  constructor(private readonly options: SubscriberPoolOptions) {
    options.metrics.gauge('SubscribedPrimaries', 0, 'Count');
  }

  /** Every event of every subscribed node goes to `listener` (the fan-in), in arrival order. */
  onEvent(listener: PoolEventListener): void {
    this.eventListeners.push(listener);
  }

  /** Gaps (see the class comment): the coverage registry hears them (worker/main.ts, after a fan-in flush). */
  onGap(listener: PoolGapListener): void {
    this.gapListeners.push(listener);
  }

  /**
   * Every `expire` notification of a node in the primary role (on-time expiry's tracker listens). A
   * replica's are not passed on: a replica applies its primary's writes and publishes their events
   * too, and the primary's already named the key.
   */
  onTtlSet(listener: PoolTtlListener): void {
    this.ttlListeners.push(listener);
  }

  /** Connection trouble (error, close): the topology may have changed; the topology watcher listens. */
  onTrouble(listener: () => void): void {
    this.troubleListeners.push(listener);
  }

  private reportGap(node: NodeRef): void {
    for (const listener of this.gapListeners) listener(node);
  }

  /**
   * Makes the subscriptions match `primaries` and `replicas` (a node listed as both counts as a
   * primary). No-op after close.
   */
  sync(primaries: readonly ClusterNode[], replicas: readonly ClusterNode[] = []): void {
    if (this.closed) return;
    const wanted = new Map<string, { node: ClusterNode; role: NodeRole }>();
    for (const node of replicas) wanted.set(primaryIdentity(node), { node, role: 'replica' });
    for (const node of primaries) wanted.set(primaryIdentity(node), { node, role: 'primary' });
    for (const [identity, entry] of this.entries) {
      if (!wanted.has(identity)) this.track(this.remove(identity, entry, 'removed'));
    }
    for (const [identity, { node, role }] of wanted) {
      const entry = this.entries.get(identity);
      if (!entry) this.add(identity, node, role);
      else if (entry.role !== role) this.changeRole(entry, role);
    }
    for (const entry of this.entries.values()) entry.upSinceLastSync = entry.up;
    this.synced = true;
    this.publishGauge();
  }

  coverage(): Coverage {
    const primaries = [...this.entries.values()]
      .filter((e) => e.role === 'primary')
      .map((e) => ({
        node: e.ref.address,
        nodeId: e.ref.id,
        subscribed: e.up,
      }));
    const subscribed = primaries.filter((p) => p.subscribed).length;
    return {
      subscribed,
      known: primaries.length,
      complete: primaries.length > 0 && subscribed === primaries.length,
      primaries,
    };
  }

  /** Closes every subscriber. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [identity, entry] of this.entries) this.track(this.remove(identity, entry, 'shutdown'));
    this.publishGauge();
    await Promise.all(this.closing);
  }

  private track(closing: Promise<void>): void {
    this.closing.add(closing);
    void closing.then(() => this.closing.delete(closing));
  }

  private changeRole(entry: Entry, role: NodeRole): void {
    const { logger } = this.options;
    entry.role = role;
    logger.info('subscription.role_changed', {
      node: entry.ref.address,
      nodeId: entry.ref.id,
      role,
      subscribed: entry.up,
    });
    // Promoted while its subscription was down, or down and back since the previous discovery: its
    // first events as a primary may have been published meanwhile.
    if (role === 'primary' && !entry.upSinceLastSync) this.reportGap(entry.ref);
  }

  private add(identity: string, node: ClusterNode, role: NodeRole): void {
    const entry: Entry = {
      ref: { id: node.id, address: nodeAddress(node) },
      role,
      connection: undefined,
      up: false,
      upSinceLastSync: false,
      gapAtFirstUp: this.synced && role === 'primary',
    };
    this.entries.set(identity, entry);
    const isCurrent = () => this.entries.get(identity) === entry;
    entry.connection = this.options.connect(node, {
      onMessage: (key) => {
        if (isCurrent()) for (const listener of this.eventListeners) listener(entry.ref, key);
      },
      onTtlSet: (key) => {
        if (isCurrent() && entry.role === 'primary')
          for (const listener of this.ttlListeners) listener(entry.ref, key);
      },
      onUp: () => {
        if (!isCurrent() || entry.up) return;
        entry.up = true;
        this.options.logger.info('subscription.up', {
          node: entry.ref.address,
          nodeId: entry.ref.id,
          role: entry.role,
        });
        this.publishGauge();
        if (entry.gapAtFirstUp) {
          entry.gapAtFirstUp = false;
          if (entry.role === 'primary') this.reportGap(entry.ref);
        }
      },
      onDown: (reason) => {
        if (!isCurrent() || !entry.up) return;
        entry.up = false;
        entry.upSinceLastSync = false;
        this.options.logger.warn('subscription.down', {
          node: entry.ref.address,
          nodeId: entry.ref.id,
          role: entry.role,
          reason,
        });
        this.publishGauge();
        // A replica publishes nothing: missing its subscription misses nothing until its promotion,
        // which `sync` judges by `upSinceLastSync`.
        if (entry.role === 'primary') this.reportGap(entry.ref);
      },
      onTrouble: () => {
        if (isCurrent()) for (const listener of this.troubleListeners) listener();
      },
    });
  }

  private async remove(identity: string, entry: Entry, reason: string): Promise<void> {
    this.entries.delete(identity);
    if (entry.up) {
      entry.up = false;
      this.options.logger.info('subscription.down', {
        node: entry.ref.address,
        nodeId: entry.ref.id,
        role: entry.role,
        reason,
      });
    }
    try {
      await entry.connection?.close();
    } catch (error) {
      this.options.logger.warn('subscription.close_failed', { node: entry.ref.address, error });
    }
  }

  private publishGauge(): void {
    this.options.metrics.gauge('SubscribedPrimaries', this.coverage().subscribed, 'Count');
  }
}

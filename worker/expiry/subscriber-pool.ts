import type { Logger } from '../../core/logger.ts';
import type { EmfMetrics } from '../../core/metrics.ts';
import { type ClusterNode, nodeAddress } from '../../core/topology.ts';
import type { NodeRef } from './fan-in.ts';
import { primaryIdentity } from './primary-diff.ts';

/**
 * One dedicated subscriber connection per known primary (keyspace events are node-local, and a
 * Cluster client's subscribe listens on one node only). `sync` is given the known primaries after each
 * topology discovery: it opens a subscriber for each new one and closes those that left.
 *
 * Coverage is "primaries subscribed out of primaries known". It is published as the gauge
 * `SubscribedPrimaries` and read by the health endpoint and the election (`canLead`). Logs:
 * `subscription.up` / `subscription.down` (`node`, `nodeId`, and `reason` for down).
 */

/** What a subscriber connection reports to the pool. */
export interface SubscriberEvents {
  /** One `expired` notification: the key's exact bytes. */
  onMessage(key: Buffer): void;
  /** The subscription is confirmed (after the first connect or a reconnect). */
  onUp(): void;
  /** The subscription was lost (connection closed or failed). */
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
  readonly onEvent: (node: NodeRef, key: Buffer) => void;
  /** Called on connection trouble; main.ts points it at TopologyWatcher.requestSync. */
  readonly onTrouble: () => void;
  /** A subscription that was up went down: this worker may have missed events of that primary. */
  readonly onGap?: (node: NodeRef) => void;
  readonly logger: Logger;
  readonly metrics: EmfMetrics;
}

interface Entry {
  readonly node: ClusterNode;
  readonly ref: NodeRef;
  connection: SubscriberConnection | undefined;
  up: boolean;
}

export class SubscriberPool {
  private readonly entries = new Map<string, Entry>();
  /** Closes started by `sync` (a primary left); awaited by `close`. */
  private readonly closing = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: SubscriberPoolOptions) {
    options.metrics.gauge('SubscribedPrimaries', 0, 'Count');
  }

  /** Makes the subscriptions match `primaries`. No-op after close. */
  sync(primaries: readonly ClusterNode[]): void {
    if (this.closed) return;
    const wanted = new Map(primaries.map((node) => [primaryIdentity(node), node]));
    for (const [identity, entry] of this.entries) {
      if (!wanted.has(identity)) this.track(this.remove(identity, entry, 'removed'));
    }
    for (const [identity, node] of wanted) {
      if (!this.entries.has(identity)) this.add(identity, node);
    }
    this.publishGauge();
  }

  coverage(): Coverage {
    const primaries = [...this.entries.values()].map((e) => ({
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

  private add(identity: string, node: ClusterNode): void {
    const entry: Entry = {
      node,
      ref: { id: node.id, address: nodeAddress(node) },
      connection: undefined,
      up: false,
    };
    this.entries.set(identity, entry);
    const isCurrent = () => this.entries.get(identity) === entry;
    entry.connection = this.options.connect(node, {
      onMessage: (key) => {
        if (isCurrent()) this.options.onEvent(entry.ref, key);
      },
      onUp: () => {
        if (!isCurrent() || entry.up) return;
        entry.up = true;
        this.options.logger.info('subscription.up', { node: entry.ref.address, nodeId: entry.ref.id });
        this.publishGauge();
      },
      onDown: (reason) => {
        if (!isCurrent() || !entry.up) return;
        entry.up = false;
        this.options.logger.warn('subscription.down', {
          node: entry.ref.address,
          nodeId: entry.ref.id,
          reason,
        });
        this.publishGauge();
        this.options.onGap?.(entry.ref);
      },
      onTrouble: () => {
        if (isCurrent()) this.options.onTrouble();
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

import type { Redis } from 'ioredis';
import { EXPIRED_CHANNEL } from '../../core/keys.ts';
import { SlotOwners } from '../../core/slot-owners.ts';
import {
  liveNodes,
  livePrimaries,
  nodeAddress,
  primariesFingerprint,
  type Topology,
} from '../../core/topology.ts';

/**
 * The "expected" side of every comparison `npm start` and the bench make: a bare subscriber on
 * `__keyevent@0__:expired` of every node, nothing else in between (no leader gate, no queue, no
 * handler). Only primaries publish `expired` (replicas apply their primary's DEL), so this is one
 * stream per primary; the replicas are subscribed too so that a promoted replica is heard from its
 * first event, without waiting for the next topology poll. The topology is polled for nodes that
 * join. It also answers "which primary owns this key's slot" for the generator's per-primary counts.
 */

export interface ReferenceSubscribersOptions {
  /** Reads the cluster's topology (e.g. discoverTopology over a Cluster client). */
  readonly discover: () => Promise<Topology>;
  /** A new connection to one node, used only to SUBSCRIBE. */
  readonly connect: (address: { host: string; port: number }) => Redis;
  readonly onEvent: (key: string, node: string, atMs: number) => void;
  readonly onPrimariesChanged?: (nodes: readonly string[]) => void;
  readonly onNotice?: (text: string) => void;
  readonly pollIntervalMs?: number;
  /** Wall-clock ms (sub-ms where available) stamped on every event. */
  readonly now?: () => number;
}

interface Subscription {
  readonly client: Redis;
  ready: boolean;
}

export class ReferenceSubscribers {
  private readonly subscriptions = new Map<string, Subscription>();
  private slotOwners = new SlotOwners({ shards: [] });
  /** `host:port` of each of `slotOwners.primaries`, computed once per topology. */
  private ownerAddresses: readonly string[] = [];
  private fingerprint = '';
  private primaryAddresses: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: ReferenceSubscribersOptions) {
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
  }

  /** First sync: resolves once every live primary has a confirmed subscription. */
  async start(): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => {
      this.syncing ??= this.sync()
        .catch((error: unknown) =>
          this.options.onNotice?.(`reference subscribers: topology poll failed: ${String(error)}`),
        )
        .finally(() => {
          this.syncing = undefined;
        });
    }, this.options.pollIntervalMs ?? 1000);
  }

  /** `host:port` of the primary that owned `key`'s slot at the last poll. */
  ownerOf(key: string): string | undefined {
    return this.ownerAddresses[this.slotOwners.indexOf(key)];
  }

  /** Live primaries at the last change of the topology. */
  primaries(): string[] {
    return [...this.primaryAddresses];
  }

  /** Live primaries whose subscription is confirmed. */
  subscribedPrimaryCount(): number {
    return this.primaryAddresses.filter((a) => this.subscriptions.get(a)?.ready === true).length;
  }

  private async sync(): Promise<void> {
    if (this.stopped) return;
    const topology = await this.options.discover();
    const fingerprint = primariesFingerprint(topology);
    this.slotOwners = new SlotOwners(topology);
    this.ownerAddresses = this.slotOwners.primaries.map(nodeAddress);
    const primaries = livePrimaries(topology).map(nodeAddress);
    const live = liveNodes(topology);
    const nodesFingerprint = `${fingerprint}|${live.map(nodeAddress).sort().join(',')}`;
    if (nodesFingerprint === this.fingerprint) return;
    this.fingerprint = nodesFingerprint;
    this.primaryAddresses = primaries;
    const wanted = new Map(live.map((n) => [nodeAddress(n), n]));
    for (const [address, subscription] of this.subscriptions) {
      if (wanted.has(address)) continue;
      this.subscriptions.delete(address);
      subscription.client.disconnect();
    }
    const added: Promise<void>[] = [];
    for (const [address, primary] of wanted) {
      if (this.subscriptions.has(address)) continue;
      added.push(this.subscribe(address, { host: primary.host, port: primary.port }));
    }
    await Promise.all(added);
    this.options.onPrimariesChanged?.(primaries);
  }

  private async subscribe(address: string, target: { host: string; port: number }): Promise<void> {
    const client = this.options.connect(target);
    const subscription: Subscription = { client, ready: false };
    this.subscriptions.set(address, subscription);
    client.on('message', (channel: string, key: string) => {
      if (channel === EXPIRED_CHANNEL) this.options.onEvent(key, address, this.now());
    });
    try {
      await client.subscribe(EXPIRED_CHANNEL);
      subscription.ready = true;
    } catch (error) {
      this.options.onNotice?.(`reference subscriber ${address}: SUBSCRIBE failed: ${String(error)}`);
    }
  }

  /** Closes every subscription. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.syncing;
    for (const subscription of this.subscriptions.values()) subscription.client.disconnect();
    this.subscriptions.clear();
  }
}

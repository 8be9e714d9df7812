import type { RedisNodeAddress } from '../../../../core/config.ts';
import { TimeoutError } from '../../../../core/errors.ts';
import { keySlot } from '../../../../core/key-slot.ts';
import type { SlotRange } from '../../../../core/keys.ts';
import { NodeUnreachableError } from '../../../../lambdas/notify-check/errors.ts';
import type {
  NodeConnection,
  RedisNodeFactory,
  SubscriberConnection,
} from '../../../../lambdas/notify-check/redis-nodes.ts';

/**
 * An in-memory Redis Cluster behind the RedisNodeFactory interface, for unit tests without network.
 * It models what the run relies on: CLUSTER SHARDS (RESP2 shape), CONFIG GET/SET of
 * notify-keyspace-events (node-local), SET with PX on the owning primary (MOVED elsewhere, READONLY on
 * replicas), lazy expiry on GET/EXISTS that publishes `__keyevent@0__:expired` when the node's own
 * flags enable it (its own check, deliberately not the code under test), the `expire` event
 * (`__keyevent@0__:expire`, class `g`) of a SET with PX, and failure modes.
 */

export type FakeFailure =
  /** Connection refused at once. */
  | 'down'
  /** Accepts nothing until the caller's bound runs out (a paused node). */
  | 'hang'
  /** Answers CONFIG with `ERR unknown command 'CONFIG'` (ElastiCache). */
  | 'config-unknown'
  /** Answers CONFIG SET with NOPERM. */
  | 'config-set-noperm'
  | undefined;

export class FakeNode {
  notify = '';
  failure: FakeFailure;
  readonly data = new Map<string, { value: string; expiresAtMs: number | undefined }>();
  readonly subscribers = new Set<(message: string) => void>();
  /** Subscribers of `__keyevent@0__:expire`. */
  readonly expireSubscribers = new Set<(message: string) => void>();
  constructor(
    readonly id: string,
    readonly port: number,
    readonly role: 'primary' | 'replica',
    readonly slots: SlotRange[],
    readonly primaryId: string | undefined,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private publishesExpired(): boolean {
    const f = this.notify;
    return f.includes('E') && (f.includes('x') || f.includes('A'));
  }

  private publishesExpire(): boolean {
    const f = this.notify;
    return f.includes('E') && (f.includes('g') || f.includes('A'));
  }

  private expireIfDue(key: string): void {
    const entry = this.data.get(key);
    if (entry?.expiresAtMs !== undefined && entry.expiresAtMs <= Date.now()) {
      this.data.delete(key);
      if (this.publishesExpired()) for (const s of this.subscribers) s(key);
    }
  }

  owns(key: string): boolean {
    const slot = keySlot(key);
    return this.slots.some(([a, b]) => slot >= a && slot <= b);
  }

  execute(cluster: FakeCluster, command: string, args: readonly string[]): unknown {
    cluster.calls.push({ node: this.address, command: [command, ...args].join(' ') });
    const cmd = command.toUpperCase();
    if (cmd === 'CLUSTER' && args[0]?.toUpperCase() === 'SHARDS') return cluster.shardsReply();
    if (cmd === 'CONFIG') {
      if (this.failure === 'config-unknown') {
        throw new Error(`ERR unknown command 'CONFIG', with args beginning with: '${args[0]}' '${args[1]}' `);
      }
      if (args[0]?.toUpperCase() === 'GET')
        return [args[1], args[1] === 'notify-keyspace-events' ? this.notify : ''];
      if (args[0]?.toUpperCase() === 'SET') {
        if (this.failure === 'config-set-noperm') {
          throw new Error("NOPERM User default has no permissions to run the 'config|set' command");
        }
        if (!/^[Ag$lshzxeKEtmdn]*$/.test(args[2] ?? ''))
          throw new Error('ERR Invalid event class character.');
        this.notify = args[2] ?? '';
        return 'OK';
      }
    }
    const key = args[0] ?? '';
    if (cmd === 'SET' || cmd === 'GET' || cmd === 'EXISTS') {
      if (this.role === 'replica' && cmd === 'SET')
        throw new Error("READONLY You can't write against a read only replica.");
      if (this.role === 'primary' && !this.owns(key)) throw new Error(`MOVED ${keySlot(key)} 127.0.0.1:0`);
      this.expireIfDue(key);
    }
    if (cmd === 'SET') {
      const px = args[2]?.toUpperCase() === 'PX' ? Number(args[3]) : undefined;
      this.data.set(key, {
        value: args[1] ?? '',
        expiresAtMs: px === undefined ? undefined : Date.now() + px,
      });
      if (px !== undefined && this.publishesExpire()) for (const s of this.expireSubscribers) s(key);
      return 'OK';
    }
    if (cmd === 'GET') return this.data.get(key)?.value ?? null;
    if (cmd === 'EXISTS') return this.data.has(key) ? 1 : 0;
    throw new Error(`ERR unknown command '${command}' (fake)`);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class FakeCluster implements RedisNodeFactory {
  readonly nodes: FakeNode[] = [];
  readonly calls: { node: string; command: string }[] = [];
  /** Every connection opened and whether it was closed. */
  readonly connections: { node: string; kind: 'cmd' | 'sub'; closed: boolean }[] = [];

  /** `primaries` shards over the 16384 slots, `replicasPerPrimary` replicas each, ports from 7000. */
  static build(
    options: { primaries?: number; replicasPerPrimary?: number; notify?: string } = {},
  ): FakeCluster {
    const cluster = new FakeCluster();
    const primaries = options.primaries ?? 3;
    const replicas = options.replicasPerPrimary ?? 1;
    let port = 7000;
    for (let p = 0; p < primaries; p++) {
      const first = Math.floor((16384 * p) / primaries);
      const last = Math.floor((16384 * (p + 1)) / primaries) - 1;
      const primary = new FakeNode(`p${p}`, port++, 'primary', [[first, last]], undefined);
      primary.notify = options.notify ?? '';
      cluster.nodes.push(primary);
      for (let r = 0; r < replicas; r++) {
        const replica = new FakeNode(`p${p}r${r}`, port++, 'replica', [], primary.id);
        replica.notify = options.notify ?? '';
        cluster.nodes.push(replica);
      }
    }
    return cluster;
  }

  get seeds(): RedisNodeAddress[] {
    return this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  node(port: number): FakeNode {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no fake node ${port}`);
    return node;
  }

  primaries(): FakeNode[] {
    return this.nodes.filter((n) => n.role === 'primary');
  }

  shardsReply(): unknown[] {
    return this.primaries().map((primary) => [
      'slots',
      primary.slots.flat(),
      'nodes',
      [primary, ...this.nodes.filter((n) => n.primaryId === primary.id)].map((n) => [
        'id',
        n.id,
        'port',
        n.port,
        'ip',
        '127.0.0.1',
        'endpoint',
        '127.0.0.1',
        'role',
        n.role === 'primary' ? 'master' : 'replica',
        'health',
        'online',
      ]),
    ]);
  }

  private async reach(address: RedisNodeAddress, timeoutMs: number): Promise<FakeNode> {
    const node = this.node(address.port);
    if (node.failure === 'down') {
      throw new NodeUnreachableError(node.address, {
        cause: new Error(`connect ECONNREFUSED ${node.address}`),
      });
    }
    if (node.failure === 'hang') {
      await sleep(timeoutMs);
      throw new NodeUnreachableError(node.address, {
        cause: new TimeoutError(`connect to ${node.address}`, timeoutMs),
      });
    }
    return node;
  }

  async connect(address: RedisNodeAddress, timeoutMs: number): Promise<NodeConnection> {
    const node = await this.reach(address, timeoutMs);
    const record = { node: node.address, kind: 'cmd' as const, closed: false };
    this.connections.push(record);
    return {
      address: node.address,
      call: async (command, args) => {
        if (record.closed) throw new Error('Connection is closed.');
        if (node.failure === 'down') throw new Error('Connection is closed.');
        return node.execute(this, command, args);
      },
      close: async () => {
        record.closed = true;
      },
    };
  }

  async connectSubscriber(address: RedisNodeAddress, timeoutMs: number): Promise<SubscriberConnection> {
    const node = await this.reach(address, timeoutMs);
    const record = { node: node.address, kind: 'sub' as const, closed: false };
    this.connections.push(record);
    const listeners: { set: Set<(message: string) => void>; listener: (message: string) => void }[] = [];
    return {
      address: node.address,
      subscribe: async (channel, onMessage) => {
        const set =
          channel === '__keyevent@0__:expired'
            ? node.subscribers
            : channel === '__keyevent@0__:expire'
              ? node.expireSubscribers
              : undefined;
        if (set === undefined)
          throw new Error(`fake publishes only expired and expire events, not ${channel}`);
        const listener = (message: string) => {
          if (!record.closed) onMessage(message);
        };
        set.add(listener);
        listeners.push({ set, listener });
      },
      close: async () => {
        record.closed = true;
        for (const { set, listener } of listeners) set.delete(listener);
      },
    };
  }
}

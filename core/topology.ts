import { TopologyError } from './errors.ts';
import { SLOT_COUNT } from './key-slot.ts';
import type { SlotRange } from './keys.ts';

/**
 * Topology discovery shared by the worker (subscriptions, quorum lease placement) and the Lambda
 * (enforcement on every node, canaries on every primary). CLUSTER SHARDS (Redis >= 7) first, CLUSTER
 * NODES as the fallback for older engines. Both RESP2 flat arrays and RESP3 maps are accepted.
 */

export type NodeRole = 'primary' | 'replica';

export interface ClusterNode {
  readonly id: string;
  /** The address clients should use: the announced endpoint/hostname when there is one, else the IP. */
  readonly host: string;
  readonly port: number;
  readonly role: NodeRole;
  /** `online`, `failed` or `loading` (CLUSTER SHARDS wording); CLUSTER NODES flags are mapped onto it. */
  readonly health: string;
}

export interface Shard {
  readonly slots: readonly SlotRange[];
  /** Undefined while a shard has no reachable primary (between a failure and a promotion). */
  readonly primary: ClusterNode | undefined;
  readonly replicas: readonly ClusterNode[];
}

export interface Topology {
  readonly shards: readonly Shard[];
}

/** `host:port` of a node: the identity used in logs, metrics fields and subscriptions. */
export function nodeAddress(node: { host: string; port: number }): string {
  return node.host.includes(':') ? `[${node.host}]:${node.port}` : `${node.host}:${node.port}`;
}

/** Primaries that own slots and are not marked failed, in a stable order (by first slot). */
export function livePrimaries(topology: Topology): ClusterNode[] {
  return topology.shards
    .filter((s) => s.primary !== undefined && s.primary.health !== 'failed' && s.slots.length > 0)
    .sort((a, b) => (a.slots[0]?.[0] ?? 0) - (b.slots[0]?.[0] ?? 0))
    .map((s) => s.primary as ClusterNode);
}

/** Every node known to the cluster (primaries and replicas), failed ones excluded. */
export function liveNodes(topology: Topology): ClusterNode[] {
  const nodes: ClusterNode[] = [];
  for (const shard of topology.shards) {
    if (shard.primary && shard.primary.health !== 'failed') nodes.push(shard.primary);
    for (const replica of shard.replicas) if (replica.health !== 'failed') nodes.push(replica);
  }
  return nodes;
}

/**
 * True when the shards' slot ranges own every slot exactly once. CLUSTER SHARDS of Redis
 * 7.2.0-7.2.5 (and Valkey <= 7.2.5) can list a shard without its slots; such a reply, or one caught
 * mid-update, is not a slot map to act on. An empty shard (a new primary before a reshard, a drained
 * one before removal) is fine when the others add up.
 */
export function coversAllSlots(topology: Topology): boolean {
  const owned = new Uint8Array(SLOT_COUNT);
  let count = 0;
  for (const shard of topology.shards) {
    for (const [first, last] of shard.slots) {
      if (!(first >= 0 && last < SLOT_COUNT && first <= last)) return false;
      for (let slot = first; slot <= last; slot++) {
        if (owned[slot] === 1) return false;
        owned[slot] = 1;
        count++;
      }
    }
  }
  return count === SLOT_COUNT;
}

export function slotRangesOf(topology: Topology, nodeId: string): SlotRange[] {
  return [...(topology.shards.find((s) => s.primary?.id === nodeId)?.slots ?? [])];
}

function toText(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return String(value);
}

/** RESP2 gives maps as flat `[k, v, k, v]` arrays; RESP3 with replyMapping 'resp3' gives objects. */
function asMap(value: unknown): Map<string, unknown> {
  const map = new Map<string, unknown>();
  if (Array.isArray(value)) {
    for (let i = 0; i + 1 < value.length; i += 2) map.set(toText(value[i]), value[i + 1]);
  } else if (value instanceof Map) {
    for (const [k, v] of value) map.set(toText(k), v);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) map.set(k, v);
  }
  return map;
}

function isHostname(value: string): boolean {
  return value !== '' && value !== '?' && value !== 'unknown-endpoint';
}

/** Parses a CLUSTER SHARDS reply. `preferTls` picks `tls-port` over `port` when both are present. */
export function parseClusterShards(reply: unknown, preferTls: boolean): Topology {
  if (!Array.isArray(reply)) throw new TopologyError('CLUSTER SHARDS reply is not an array');
  const shards: Shard[] = [];
  for (const rawShard of reply) {
    const shard = asMap(rawShard);
    const slotList = (shard.get('slots') as unknown[] | undefined) ?? [];
    const slots: SlotRange[] = [];
    for (let i = 0; i + 1 < slotList.length; i += 2)
      slots.push([Number(slotList[i]), Number(slotList[i + 1])]);
    let primary: ClusterNode | undefined;
    const replicas: ClusterNode[] = [];
    for (const rawNode of (shard.get('nodes') as unknown[] | undefined) ?? []) {
      const node = asMap(rawNode);
      const tlsPort = node.has('tls-port') ? Number(node.get('tls-port')) : undefined;
      const plainPort = node.has('port') ? Number(node.get('port')) : undefined;
      const port = (preferTls ? (tlsPort ?? plainPort) : (plainPort ?? tlsPort)) ?? 0;
      const endpoint = toText(node.get('endpoint') ?? '');
      const hostname = toText(node.get('hostname') ?? '');
      const ip = toText(node.get('ip') ?? '');
      const host = isHostname(endpoint) ? endpoint : isHostname(hostname) ? hostname : ip;
      const role: NodeRole = toText(node.get('role')) === 'master' ? 'primary' : 'replica';
      const health =
        toText(node.get('health') ?? 'online') === 'fail' ? 'failed' : toText(node.get('health') ?? 'online');
      const info: ClusterNode = { id: toText(node.get('id')), host, port, role, health };
      if (role === 'primary') primary = info;
      else replicas.push(info);
    }
    shards.push({ slots, primary, replicas });
  }
  return { shards };
}

/** One line of CLUSTER NODES, as the answering node sees another node (or itself). */
export interface ClusterNodesLine {
  readonly id: string;
  /** The IP (the address part before `@`). */
  readonly host: string;
  /** The announced hostname (`ip:port@cport,hostname`), when there is one. */
  readonly hostname: string | undefined;
  readonly port: number;
  readonly busPort: number;
  readonly flags: readonly string[];
  readonly role: NodeRole;
  /** For replicas: the id of the primary they replicate; undefined for primaries. */
  readonly primaryId: string | undefined;
  readonly configEpoch: number;
  readonly linkState: string;
  readonly slots: readonly [number, number][];
  /** `[slot->-id]` (migrating) and `[slot-<-id]` (importing) entries, only shown on the node itself. */
  readonly openSlots: readonly string[];
  readonly isMyself: boolean;
  /** FAIL: a majority of primaries agreed the node is unreachable. */
  readonly isFailed: boolean;
  /** PFAIL (`fail?`): the answering node alone cannot reach it. */
  readonly isSuspected: boolean;
  /** `handshake` or `noaddr`: not (yet, or no longer) a usable member. */
  readonly isIncomplete: boolean;
}

/** Parses CLUSTER NODES text line by line (shared by parseClusterNodes and the embedded cluster). */
export function parseClusterNodesLines(text: string): ClusterNodesLine[] {
  const lines: ClusterNodesLine[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    if (fields.length < 8) continue;
    const [id, address, flagText, primary, , , epoch, linkState, ...slotFields] = fields as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      ...string[],
    ];
    // ip:port@cport[,hostname]; the ip may itself contain ':' (IPv6), so split at the last one.
    const [endpoint = '', hostname] = address.split(',');
    const [hostPort = '', busPortText = '0'] = endpoint.split('@');
    const colon = hostPort.lastIndexOf(':');
    const flags = flagText.split(',');
    const slots: [number, number][] = [];
    const openSlots: string[] = [];
    for (const field of slotFields) {
      if (field === '') continue;
      if (field.startsWith('[')) {
        openSlots.push(field);
        continue;
      }
      const [first, last = first] = field.split('-');
      slots.push([Number(first), Number(last)]);
    }
    const isReplica = flags.includes('slave');
    lines.push({
      id,
      host: colon >= 0 ? hostPort.slice(0, colon) : hostPort,
      hostname: hostname === undefined || hostname === '' ? undefined : hostname,
      port: Number(colon >= 0 ? hostPort.slice(colon + 1) : 0),
      busPort: Number(busPortText),
      flags,
      role: isReplica ? 'replica' : 'primary',
      primaryId: isReplica && primary !== '-' ? primary : undefined,
      configEpoch: Number(epoch),
      linkState,
      slots,
      openSlots,
      isMyself: flags.includes('myself'),
      isFailed: flags.includes('fail'),
      isSuspected: flags.includes('fail?'),
      isIncomplete: flags.includes('handshake') || flags.includes('noaddr'),
    });
  }
  return lines;
}

/** Parses CLUSTER NODES text into shards (fallback for engines without CLUSTER SHARDS). */
export function parseClusterNodes(text: string): Topology {
  const byPrimary = new Map<string, { slots: SlotRange[]; primary?: ClusterNode; replicas: ClusterNode[] }>();
  const entry = (id: string) => {
    let e = byPrimary.get(id);
    if (!e) {
      e = { slots: [], replicas: [] };
      byPrimary.set(id, e);
    }
    return e;
  };
  for (const line of parseClusterNodesLines(text)) {
    if (line.isIncomplete) continue;
    const failed = line.isFailed || line.linkState === 'disconnected';
    const node: ClusterNode = {
      id: line.id,
      host: line.hostname ?? line.host,
      port: line.port,
      role: line.role,
      health: failed ? 'failed' : 'online',
    };
    if (node.role === 'primary') {
      const e = entry(line.id);
      e.primary = node;
      e.slots.push(...line.slots);
    } else if (line.primaryId !== undefined) {
      entry(line.primaryId).replicas.push(node);
    }
  }
  return {
    shards: [...byPrimary.values()].map((e) => ({
      slots: e.slots,
      primary: e.primary,
      replicas: e.replicas,
    })),
  };
}

/** Sends one command to some node of the cluster and returns the raw reply. */
export type ClusterCommand = (command: string, ...args: string[]) => Promise<unknown>;

/**
 * Reads the topology through `call` (for example `(c, ...a) => cluster.call(c, ...a)` on an ioredis
 * Cluster, or a plain node client). Falls back to CLUSTER NODES when CLUSTER SHARDS is unknown, and
 * when its reply does not own every slot (`coversAllSlots`); when neither reply is complete, the
 * incomplete CLUSTER SHARDS reply is returned and callers that act on slots check `coversAllSlots`.
 */
export async function discoverTopology(
  call: ClusterCommand,
  options: { preferTls: boolean },
): Promise<Topology> {
  let shardsError: unknown;
  let incomplete: Topology | undefined;
  try {
    const shards = parseClusterShards(await call('CLUSTER', 'SHARDS'), options.preferTls);
    if (coversAllSlots(shards)) return shards;
    // The 7.2.0-7.2.5 empty-slots bug (or a reply mid-update): CLUSTER NODES lists the slots.
    incomplete = shards;
  } catch (error) {
    shardsError = error;
  }
  try {
    const nodes = parseClusterNodes(toText(await call('CLUSTER', 'NODES')));
    return incomplete === undefined || coversAllSlots(nodes) ? nodes : incomplete;
  } catch (error) {
    if (incomplete !== undefined) return incomplete;
    throw new TopologyError('neither CLUSTER SHARDS nor CLUSTER NODES could be read', {
      cause: new AggregateError([shardsError, error]),
    });
  }
}

/** Stable fingerprint of the primaries (id@address, sorted) to detect topology changes. */
export function primariesFingerprint(topology: Topology): string {
  return livePrimaries(topology)
    .map((p) => `${p.id}@${nodeAddress(p)}`)
    .sort()
    .join(',');
}

/**
 * Nodes that publish no `expired` now but may start at any moment, failed ones excluded: the replicas
 * of the shards that own slots (a failover promotes one), then the nodes of the shards that own no
 * slots yet (a scale-out: the new shard's nodes join the cluster before slots move to them, which is
 * how ElastiCache's online resharding adds a shard). The worker subscribes to them in advance, so the
 * first events after a promotion or after the first slot moved reach a subscription already there.
 * Shards without slots count only in a reply that owns every slot (`coversAllSlots`): in an
 * incomplete one (the 7.2.0-7.2.5 empty-slots bug) such a shard may be a primary that owns slots.
 */
export function standbyNodes(topology: Topology): ClusterNode[] {
  const live = (node: ClusterNode | undefined): node is ClusterNode =>
    node !== undefined && node.health !== 'failed';
  const replicas = topology.shards
    .filter((s) => s.slots.length > 0)
    .sort((a, b) => (a.slots[0]?.[0] ?? 0) - (b.slots[0]?.[0] ?? 0))
    .flatMap((s) => s.replicas.filter(live));
  if (!coversAllSlots(topology)) return replicas;
  const slotless = topology.shards
    .filter((s) => s.slots.length === 0)
    .flatMap((s) => [s.primary, ...s.replicas].filter(live));
  return [...replicas, ...slotless];
}

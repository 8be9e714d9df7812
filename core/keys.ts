import { keySlot } from './key-slot.ts';

/** Inclusive slot range `[first, last]` as CLUSTER SHARDS reports it. */
export type SlotRange = readonly [number, number];

/** Every key and channel name keyspace-leader uses starts with this; user handlers never see them. */
export const OWN_KEY_PREFIX = '{kl:';

/** The channel on which every primary publishes `expired` events for database 0. */
export const EXPIRED_CHANNEL = '__keyevent@0__:expired';

/**
 * The channel on which a node publishes `expire` events (class `g`: a TTL was set or changed) for
 * database 0; on-time expiry's source of deadlines (worker/expiry/expiry-tracker.ts).
 */
export const EXPIRE_CHANNEL = '__keyevent@0__:expire';

const LEADER_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** What `KeyspaceKeys.classify` recognises a key or channel name as. */
export type OwnKeyClass =
  | { readonly kind: 'lease' | 'epoch' | 'leader-record' | 'released-channel' | 'coverage' }
  | { readonly kind: 'quorum-lease' | 'quorum-epoch'; readonly partitionIndex: number }
  | { readonly kind: 'processed-mark'; readonly partitionIndex: number; readonly nodeId: string }
  | { readonly kind: 'expire-probe'; readonly partitionIndex: number; readonly instanceId: string }
  | { readonly kind: 'outbox' | 'outbox-fence'; readonly partitionIndex: number }
  | { readonly kind: 'canary'; readonly tagIndex: number; readonly nonce: string };

export type OwnKeyKind = OwnKeyClass['kind'];

/** The kinds that live under the lease family's hash tag `{kl:<name>}` (one slot). */
export const FAMILY_KEY_KINDS: ReadonlySet<OwnKeyKind> = new Set([
  'lease',
  'epoch',
  'leader-record',
  'released-channel',
  'coverage',
]);

const OWN_KEY_PREFIX_BYTES = Buffer.from(OWN_KEY_PREFIX, 'latin1');

/** True for a key (string or raw bytes) that belongs to keyspace-leader itself. */
export function isOwnKey(key: string | Uint8Array): boolean {
  if (typeof key === 'string') return key.startsWith(OWN_KEY_PREFIX);
  // Byte by byte: called for every event, so no copy and no decoding.
  if (key.length < OWN_KEY_PREFIX_BYTES.length) return false;
  for (let i = 0; i < OWN_KEY_PREFIX_BYTES.length; i++) if (key[i] !== OWN_KEY_PREFIX_BYTES[i]) return false;
  return true;
}

export function isValidLeaderName(name: string): boolean {
  return LEADER_NAME_PATTERN.test(name);
}

/**
 * The one place that builds Redis key names (docs/security.md, "Access strings", lists them). The lease family shares
 * one hash tag so the single-key lease, the fencing counter, the leader record and the channel land on
 * one slot; keys that must spread over shards (quorum lease members, outbox partitions, canaries) each
 * take their own tag `{kl:<name>:<kind><index>}`.
 */
export class KeyspaceKeys {
  readonly leaderName: string;
  /** `{kl:<name>}`: the lease family's hash tag. */
  readonly familyTag: string;

  constructor(leaderName: string) {
    if (!isValidLeaderName(leaderName)) {
      throw new RangeError(
        `leader name must match ${LEADER_NAME_PATTERN}, got ${JSON.stringify(leaderName)}`,
      );
    }
    this.leaderName = leaderName;
    this.familyTag = `{kl:${leaderName}}`;
  }

  /** The single-key lease (used when the cluster has fewer than 3 primaries). */
  get lease(): string {
    return `${this.familyTag}:lease`;
  }

  /** Fencing counter: INCR on every acquisition; never decreases. */
  get epoch(): string {
    return `${this.familyTag}:epoch`;
  }

  /** The leader record (JSON), kept for a day after the lease lapses. */
  get leader(): string {
    return `${this.familyTag}:leader`;
  }

  /** Pub/sub channel on which a leader announces a graceful release. */
  get releasedChannel(): string {
    return `${this.familyTag}:released`;
  }

  /** Hash of the workers' coverage reports: field WORKER_ID, value as in worker/leader/coverage-report.ts. */
  get coverage(): string {
    return `${this.familyTag}:covered`;
  }

  /** Hash tag of partition `index` (`{kl:<name>:p<index>}`), used by quorum lease members. */
  partitionTag(index: number): string {
    return `{kl:${this.leaderName}:p${index}}`;
  }

  /** Lease key of one member of the quorum lease. */
  quorumLease(partitionIndex: number): string {
    return `${this.partitionTag(partitionIndex)}:lease`;
  }

  /** Fencing counter copy kept beside one quorum member (the token is the max over a majority + 1). */
  quorumEpoch(partitionIndex: number): string {
    return `${this.partitionTag(partitionIndex)}:epoch`;
  }

  /** Outbox stream of partition `index` (`HANDLER=stream`). Its tag is `{kl:<name>:o<index>}`. */
  outbox(index: number): string {
    return `{kl:${this.leaderName}:o${index}}:outbox`;
  }

  /** Highest fencing token that appended to outbox partition `index`; lower tokens are refused. */
  outboxFence(index: number): string {
    return `{kl:${this.leaderName}:o${index}}:fence`;
  }

  /**
   * Processed mark of one primary's event sequence, kept beside quorum member `partitionIndex`: the
   * leader writes it on the three member tags (three different primaries), so one primary failing
   * over does not take the marks with it.
   */
  processedMark(partitionIndex: number, nodeId: string): string {
    return `${this.partitionTag(partitionIndex)}:processed:${nodeId}`;
  }

  /**
   * A worker's probe of a primary's `expire` events (on-time expiry, worker/expiry/expire-event-probe.ts):
   * written with a short TTL under partition tag `partitionIndex` (chosen so its slot is on the probed
   * primary), by the worker process `instanceId`.
   */
  expireProbe(partitionIndex: number, instanceId: string): string {
    return `${this.partitionTag(partitionIndex)}:expire-probe:${instanceId}`;
  }

  /** Canary key of tag index `index`; the canary code picks an index whose slot the target owns. */
  canary(index: number, nonce: string): string {
    return `{kl:${this.leaderName}:c${index}}:canary:${nonce}`;
  }

  /**
   * A SCAN/KEYS glob that matches every key of this leader name (and, as a glob cannot end a name,
   * keys of longer leader names with this one as prefix: pass each match through `classify`).
   */
  get scanPattern(): string {
    return `{kl:${this.leaderName}*`;
  }

  /**
   * What `key` is among the names this class builds for this leader name, with the partition index,
   * node id or nonce parsed where the kind has one; undefined for any other key (a user key, a key of
   * another leader name, a malformed one). It parses the tag, then compares with what the builders
   * above produce, so a layout change in a builder cannot leave the classifier behind.
   */
  classify(key: string): OwnKeyClass | undefined {
    const head = `{kl:${this.leaderName}`;
    if (!key.startsWith(head)) return undefined;
    if (key.startsWith(`${this.familyTag}:`)) {
      const family: [string, OwnKeyClass][] = [
        [this.lease, { kind: 'lease' }],
        [this.epoch, { kind: 'epoch' }],
        [this.leader, { kind: 'leader-record' }],
        [this.releasedChannel, { kind: 'released-channel' }],
        [this.coverage, { kind: 'coverage' }],
      ];
      return family.find(([name]) => name === key)?.[1];
    }
    const tag = /^:([poc])(0|[1-9][0-9]{0,8})\}:/.exec(key.slice(head.length));
    if (!tag) return undefined;
    const index = Number(tag[2]);
    switch (tag[1]) {
      case 'p': {
        if (key === this.quorumLease(index)) return { kind: 'quorum-lease', partitionIndex: index };
        if (key === this.quorumEpoch(index)) return { kind: 'quorum-epoch', partitionIndex: index };
        const markHead = this.processedMark(index, '');
        if (key.length > markHead.length && key.startsWith(markHead)) {
          return { kind: 'processed-mark', partitionIndex: index, nodeId: key.slice(markHead.length) };
        }
        const probeHead = this.expireProbe(index, '');
        if (key.length > probeHead.length && key.startsWith(probeHead)) {
          return { kind: 'expire-probe', partitionIndex: index, instanceId: key.slice(probeHead.length) };
        }
        return undefined;
      }
      case 'o':
        if (key === this.outbox(index)) return { kind: 'outbox', partitionIndex: index };
        if (key === this.outboxFence(index)) return { kind: 'outbox-fence', partitionIndex: index };
        return undefined;
      default: {
        const canaryHead = this.canary(index, '');
        if (key.length > canaryHead.length && key.startsWith(canaryHead)) {
          return { kind: 'canary', tagIndex: index, nonce: key.slice(canaryHead.length) };
        }
        return undefined;
      }
    }
  }

  /**
   * The smallest index `i >= 0` whose tag `make(i)` hashes to a slot inside `ranges`. Used to place a
   * quorum lease member or a canary on a chosen primary. Throws when the ranges are empty.
   */
  static findIndexOnSlots(
    ranges: readonly SlotRange[],
    make: (index: number) => string,
    limit = 100_000,
  ): number {
    if (ranges.length === 0) throw new RangeError('no slot ranges to place a key on');
    for (let index = 0; index < limit; index++) {
      const slot = keySlot(make(index));
      if (ranges.some(([first, last]) => slot >= first && slot <= last)) return index;
    }
    throw new RangeError(`no tag index below ${limit} hashes into the given slot ranges`);
  }
}

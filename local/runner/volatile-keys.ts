import { SlotOwners } from '../../core/slot-owners.ts';
import type { ClusterNode, Topology } from '../../core/topology.ts';

/**
 * `npm start -- --volatile N`: N background keys `<prefix><n>` (n = 1..N) with a long TTL, the
 * volatile keys of an application (sessions, carts) that make Redis' native expiry slow: its
 * active-expiry cycle samples about 20 keys per 100 ms tick, so a due key waits about (volatile keys
 * on the node / 200) seconds (docs/precise-expiry.md). They match the workers' KEY_PATTERN (`*` by
 * default), so the workers track them too, as they would in production (docs/local-run.md, `--volatile`).
 *
 * - `load` sets them before the workers start (the workers find them with their scan, not through
 *   `expire` events), in pipelines of `batchSize` commands on a connection per primary, each key on
 *   the primary owning its slot in a fresh discovery;
 * - `deleteAll` deletes them at the end (DEL publishes no `expired`, so nothing reaches a handler) and
 *   then checks with EXISTS how many are left: the runner leaves nothing behind.
 * Failed commands (a MOVED during a failover, a lost connection) are counted, never retried.
 */

/** One connection to a primary that runs a pipeline of commands. */
export interface VolatileKeysNode {
  /** Sends `commands` (each `[name, ...args]`) as one pipeline; one reply per command, an Error for a failed one. */
  exec(commands: readonly (readonly (string | number)[])[]): Promise<readonly unknown[]>;
  close(): void;
}

export interface VolatileKeysOptions {
  readonly count: number;
  readonly prefix: string;
  readonly ttlMs: number;
  readonly discover: () => Promise<Topology>;
  readonly connect: (node: ClusterNode) => VolatileKeysNode;
  /** Commands per pipeline. @default 1000 */
  readonly batchSize?: number;
  /** Pipelines in flight over all primaries. @default 8 */
  readonly maxInFlight?: number;
}

export interface VolatileLoad {
  readonly set: number;
  readonly failed: number;
  /** The first failure's message, if any failed. */
  readonly firstError: string | undefined;
}

export interface VolatileDeletion {
  readonly deleted: number;
  /** Keys still there after the deletion, plus keys whose check failed (they may be). */
  readonly left: number;
}

export const VOLATILE_KEYS_DEFAULTS = { batchSize: 1000, maxInFlight: 8 } as const;

type Command = readonly (string | number)[];

export class VolatileKeys {
  constructor(private readonly options: VolatileKeysOptions) {
    if (!(Number.isInteger(options.count) && options.count >= 0))
      throw new RangeError(`count must be a whole number >= 0, got ${options.count}`);
  }

  keyOf(n: number): string {
    return `${this.options.prefix}${n}`;
  }

  /** Sets every key with PX ttlMs; resolves with how many were acknowledged and how many failed. */
  async load(): Promise<VolatileLoad> {
    let set = 0;
    let failed = 0;
    let firstError: string | undefined;
    await this.forEachKey(
      (key) => ['SET', key, '1', 'PX', this.options.ttlMs],
      (reply) => {
        if (reply === 'OK') set++;
        else {
          failed++;
          firstError ??= reply instanceof Error ? reply.message : `unexpected reply ${String(reply)}`;
        }
      },
    );
    return { set, failed, firstError };
  }

  /** Deletes every key, then counts those still there. */
  async deleteAll(): Promise<VolatileDeletion> {
    let deleted = 0;
    await this.forEachKey(
      (key) => ['DEL', key],
      (reply) => {
        if (reply === 1) deleted++;
      },
    );
    let left = 0;
    await this.forEachKey(
      (key) => ['EXISTS', key],
      (reply) => {
        if (reply !== 0) left++;
      },
    );
    return { deleted, left };
  }

  /**
   * Runs `command` for every key on the primary owning its slot; `onReply` gets each reply (an Error
   * for a failed command; every command of a pipeline that failed as a whole; an Error for a key whose
   * slot has no primary).
   */
  private async forEachKey(
    command: (key: string) => Command,
    onReply: (reply: unknown) => void,
  ): Promise<void> {
    const { count } = this.options;
    if (count === 0) return;
    const batchSize = this.options.batchSize ?? VOLATILE_KEYS_DEFAULTS.batchSize;
    const maxInFlight = this.options.maxInFlight ?? VOLATILE_KEYS_DEFAULTS.maxInFlight;
    const topology = await this.options.discover();
    const slots = new SlotOwners(topology);
    const primaries = slots.primaries;
    const connections = primaries.map((node) => this.options.connect(node));
    const batches: Command[][] = primaries.map(() => []);
    const inFlight = new Set<Promise<void>>();
    const send = async (index: number): Promise<void> => {
      const commands = batches[index] as Command[];
      batches[index] = [];
      const done = (connections[index] as VolatileKeysNode).exec(commands).then(
        (replies) => {
          for (let i = 0; i < commands.length; i++) onReply(replies[i] ?? new Error('no reply'));
        },
        (error: unknown) => {
          for (let i = 0; i < commands.length; i++) onReply(error);
        },
      );
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
      if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    };
    try {
      for (let n = 1; n <= count; n++) {
        const key = this.keyOf(n);
        const index = slots.indexOf(key);
        if (index < 0) {
          onReply(new Error(`no primary owns the slot of ${key}`));
          continue;
        }
        const batch = batches[index] as Command[];
        batch.push(command(key));
        if (batch.length >= batchSize) await send(index);
      }
      for (let index = 0; index < primaries.length; index++) {
        if ((batches[index] as Command[]).length > 0) await send(index);
      }
      await Promise.all(inFlight);
    } finally {
      for (const connection of connections) connection.close();
    }
  }
}

/**
 * PEXPIRETIME of a batch of keys, one command per primary (the tracker's lookups and the toucher's
 * touches, expiry-tracker.ts, expiry-toucher.ts): the keys are grouped by the primary owning their
 * slot in the last topology (`ownerOf`), and each group goes to that primary's own connection as one
 * `key-deadlines` script call (worker/scripts/key-deadlines.ts, through `onNode`). A thousand touches
 * then cost the worker one command per primary instead of a thousand Cluster commands (about 40 µs
 * each on this machine, most of a burst's time: docs/precise-expiry.md, "Touch rules"), and reach Redis
 * within a millisecond of each other.
 *
 * Fallback, key by key: a key without a known owner, a group whose call failed (no connection, a
 * timeout, or an error reply: the slot moved and the node serves it no more) and every key answered
 * with an error go to `fallback`, the Cluster client's PEXPIRETIME of each key (cluster-deadlines.ts),
 * which routes each key to its slot's current primary and follows MOVED and ASK. One result per key,
 * in order; never rejects.
 */
export interface NodeDeadlinesOptions {
  /** The node id owning `key`'s slot in the last topology (primary-clocks.ts `ownerOf`), or undefined. */
  readonly ownerOf: (key: Buffer) => string | undefined;
  /** PEXPIRETIME of `keys` on the primary `nodeId` (its scan connection); one result per key. */
  readonly onNode: (nodeId: string, keys: readonly Buffer[]) => Promise<readonly (number | Error)[]>;
  /** PEXPIRETIME of each key through the Cluster client. */
  readonly fallback: (keys: readonly Buffer[]) => Promise<readonly (number | Error)[]>;
}

/**
 * The positions of `keys` grouped by the primary owning each key's slot (`ownerOf`), in order, and
 * those without a known owner: the one grouping of every per-primary batch (here and value-reader.ts).
 */
export function groupByOwner(
  keys: readonly Buffer[],
  ownerOf: (key: Buffer) => string | undefined,
): { readonly byOwner: Map<string, number[]>; readonly unowned: number[] } {
  const byOwner = new Map<string, number[]>();
  const unowned: number[] = [];
  for (let i = 0; i < keys.length; i++) {
    const owner = ownerOf(keys[i] as Buffer);
    if (owner === undefined) {
      unowned.push(i);
      continue;
    }
    const group = byOwner.get(owner);
    if (group === undefined) byOwner.set(owner, [i]);
    else group.push(i);
  }
  return { byOwner, unowned };
}

export type KeyDeadlines = (keys: readonly Buffer[]) => Promise<readonly (number | Error)[]>;

export function nodeDeadlines(options: NodeDeadlinesOptions): KeyDeadlines {
  const { ownerOf, onNode, fallback } = options;
  return async (keys) => {
    const results: (number | Error)[] = new Array(keys.length);
    const { byOwner, unowned: retry } = groupByOwner(keys, ownerOf);
    await Promise.all(
      [...byOwner].map(async ([nodeId, indexes]) => {
        let replies: readonly (number | Error)[] | undefined;
        try {
          replies = await onNode(
            nodeId,
            indexes.map((i) => keys[i] as Buffer),
          );
        } catch {
          replies = undefined;
        }
        for (let j = 0; j < indexes.length; j++) {
          const reply = replies?.[j];
          const i = indexes[j] as number;
          if (typeof reply === 'number') results[i] = reply;
          else retry.push(i);
        }
      }),
    );
    if (retry.length > 0) {
      const replies = await fallback(retry.map((i) => keys[i] as Buffer)).catch((error: unknown) =>
        retry.map(() => (error instanceof Error ? error : new Error(String(error)))),
      );
      for (let j = 0; j < retry.length; j++)
        results[retry[j] as number] = replies[j] ?? new Error('no PEXPIRETIME reply');
    }
    return results;
  };
}

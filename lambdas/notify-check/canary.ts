import type { Clock } from '../../core/clock.ts';
import { EXPIRE_CHANNEL, EXPIRED_CHANNEL, KeyspaceKeys } from '../../core/keys.ts';
import type { Logger } from '../../core/logger.ts';
import { nodeAddress, type Shard } from '../../core/topology.ts';
import { describeError } from './errors.ts';
import type { NodePool, RedisNodeFactory, SubscriberConnection } from './redis-nodes.ts';
import type { CanaryReport } from './report.ts';

/**
 * End-to-end proof that a primary publishes `expired` events: on the primary's own subscriber
 * connection, subscribe to `__keyevent@0__:expired`, then SET a canary key (hashed to a slot that
 * primary owns) with a TTL of tens of ms, then wait for that key's event. Redis deletes an expired key
 * when it is accessed or when its active-expiry cycle finds it, so after the TTL the key is touched
 * with EXISTS every `pokeIntervalMs`: that triggers the lazy expiry (and the event) at once.
 *
 * With precise expiry (PRECISE_EXPIRY, the default) the same connection also subscribes to
 * `__keyevent@0__:expire`: the SET with PX publishes the key's `expire` event (class `g`) when the SET
 * executes, before its `expired`, and both reach the one connection in the order published, so once
 * `expired` arrived (or the wait ended) a missing `expire` is final: `expireEventsFlow` false, the
 * workers handle that primary with native expiry (worker/expiry/precise-expiry.ts).
 *
 * The key carries the run's nonce after the hash tag (the tag alone decides the slot), so concurrent
 * runs never take each other's events for their own.
 */

export interface CanaryOptions {
  readonly keys: KeyspaceKeys;
  readonly nonce: string;
  readonly pool: NodePool;
  readonly factory: RedisNodeFactory;
  /** Bound of one step (connect, subscribe, SET, EXISTS), already cut to the run's budget. */
  readonly stepTimeoutMs: () => number;
  /** How long to wait for the event after the SET (CANARY_TIMEOUT_MS cut to the run's budget). */
  readonly waitTimeoutMs: () => number;
  readonly ttlMs: number;
  readonly pokeIntervalMs: number;
  /** PRECISE_EXPIRY: also wait for the key's `expire` event (`expireEventsFlow`). */
  readonly preciseExpiry: boolean;
  readonly clock: Clock;
  readonly logger: Logger;
}

export function formatSlotRanges(slots: Shard['slots']): string {
  return slots.map(([first, last]) => (first === last ? `${first}` : `${first}-${last}`)).join(',');
}

/** A timer that can be cancelled so that no wait outlives the canary. */
function pause(ms: number): { readonly done: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
    timer = setTimeout(resolve, Math.max(0, ms));
  });
  return {
    done,
    cancel: () => {
      clearTimeout(timer);
      resolveDone();
    },
  };
}

/** Never throws: a primary that cannot be verified is a report with `verified: false` and the reason. */
export async function runCanary(shard: Shard, options: CanaryOptions): Promise<CanaryReport> {
  const slots = formatSlotRanges(shard.slots);
  const primary = shard.primary;
  if (!primary || primary.health === 'failed') {
    return {
      node: primary ? nodeAddress(primary) : '(none)',
      nodeId: primary?.id ?? '',
      slots,
      verified: false,
      latencyMs: null,
      expireEventsFlow: null,
      key: null,
      error: `the shard owning slots ${slots} has no live primary`,
    };
  }
  const address = nodeAddress(primary);
  const log = options.logger.child({ node: address });
  const index = KeyspaceKeys.findIndexOnSlots(shard.slots, (i) => options.keys.canary(i, ''));
  const key = options.keys.canary(index, options.nonce);
  /** Whether the `expire` event came; undefined until the SET was sent (and without precise expiry). */
  let expireSeen: boolean | undefined;
  const result = (verified: boolean, latencyMs: number | null, error: string | null): CanaryReport => ({
    node: address,
    nodeId: primary.id,
    slots,
    verified,
    latencyMs,
    expireEventsFlow: expireSeen ?? null,
    key,
    error,
  });

  let subscriber: SubscriberConnection | undefined;
  try {
    let eventAtMs: number | undefined;
    let wake: () => void = () => {};
    subscriber = await options.factory.connectSubscriber(primary, options.stepTimeoutMs());
    await subscriber.subscribe(
      EXPIRED_CHANNEL,
      (expiredKey) => {
        if (expiredKey !== key || eventAtMs !== undefined) return;
        eventAtMs = options.clock.monotonicMs();
        wake();
      },
      options.stepTimeoutMs(),
    );
    let expireArrived = false;
    if (options.preciseExpiry) {
      await subscriber.subscribe(
        EXPIRE_CHANNEL,
        (ttlKey) => {
          if (ttlKey === key) expireArrived = true;
        },
        options.stepTimeoutMs(),
      );
    }
    const connection = await options.pool.get(primary, options.stepTimeoutMs());
    const waitMs = options.waitTimeoutMs();
    const setAtMs = options.clock.monotonicMs();
    await connection.call('SET', [key, options.nonce, 'PX', String(options.ttlMs)], options.stepTimeoutMs());
    const expireVerdict = () => {
      if (options.preciseExpiry) expireSeen = expireArrived;
    };
    const deadlineMs = setAtMs + waitMs;
    // The server started the TTL when the SET arrived, a little after setAtMs: the first touch may be early.
    let nextPokeAtMs = setAtMs + options.ttlMs + 2;
    let lastPokeError: unknown;
    while (eventAtMs === undefined) {
      const nowMs = options.clock.monotonicMs();
      if (nowMs >= deadlineMs) break;
      if (nowMs >= nextPokeAtMs) {
        nextPokeAtMs = nowMs + options.pokeIntervalMs;
        try {
          await connection.call(
            'EXISTS',
            [key],
            Math.max(1, Math.min(options.stepTimeoutMs(), deadlineMs - nowMs)),
          );
        } catch (error) {
          lastPokeError = error;
        }
        continue;
      }
      const timer = pause(Math.min(nextPokeAtMs, deadlineMs) - nowMs);
      wake = timer.cancel;
      await timer.done;
      timer.cancel();
    }
    expireVerdict();
    if (expireSeen === false) log.warn('canary.no_expire_events', { key });
    if (eventAtMs !== undefined) {
      const latencyMs = Math.round((eventAtMs - setAtMs) * 10) / 10;
      log.debug('canary.verified', { key, latencyMs, expireEventsFlow: expireSeen ?? null });
      return result(true, latencyMs, null);
    }
    const error =
      `no expired event for the canary within ${waitMs} ms (notifications off on this primary?)` +
      (lastPokeError !== undefined ? `; last EXISTS failed: ${describeError(lastPokeError)}` : '');
    log.warn('canary.failed', { key, waitMs, error });
    return result(false, null, error);
  } catch (error) {
    log.warn('canary.failed', { key, error });
    return result(false, null, describeError(error));
  } finally {
    await subscriber?.close();
  }
}

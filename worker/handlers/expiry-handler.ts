import type { ValueMissingReason } from '../../core/captured-values.ts';
import type { LineLogger } from '../../core/logger.ts';

/**
 * The handler interface (docs/worker.md). A handler is called once per `expired` event that passes
 * KEY_PATTERN, and only while this worker leads. It may be async. Right before each side effect it
 * checks `ctx.leaseValid()` (synchronous, exact) and stops when that is false; `ctx.signal` is the best
 * effort companion for waits (it aborts when the call times out, HANDLER_TIMEOUT_MS, when this worker
 * stops leading and at shutdown, but only once a timer or callback has run: see `leaseValid`).
 */
export interface HandlerEvent {
  /**
   * `<nodeId>:<seq>`, one meaning whatever the configuration (REPLAY_WINDOW_MS=0 included): never
   * the id of two different expirations, across leader changes and restarts; the same for the same
   * expiry when a successor's window aligned with the previous leader's processed mark (worker/replay/).
   * Downstreams drop duplicates by it.
   */
  readonly id: string;
  /** The key as text: exact when the bytes are valid UTF-8, else a lossy decoding (see keyBytes). */
  readonly key: string;
  /** The key's exact bytes. */
  readonly keyBytes: Buffer;
  /** `host:port` of the primary that published the event. */
  readonly node: string;
  /** Cluster node id of that primary. */
  readonly nodeId: string;
  /** The event's number in that primary's shared numbering (the leaders' processed marks, worker/replay/). */
  readonly seq: number;
  /** Wall-clock ms at which this worker received the event. */
  readonly receivedAt: number;
  /**
   * True when the event is handed out from the replay window rather than live: by a new leader (the
   * previous leader may have handled it too), or by a leader that resumes a primary it had suspended.
   */
  readonly replayed: boolean;
  /**
   * On-time expiry: the key's deadline in its primary's clock (ms since the epoch), present when this
   * worker's deadline index tracked the key (worker/expiry/expiry-tracker.ts). (keyBytes, deadlineMs)
   * names the expiry on every worker without alignment, except across a slot migration (RESTORE sets
   * the deadline anew): README, "Event identity".
   */
  readonly deadlineMs?: number;
  /**
   * Value capture (docs/precise-expiry.md, "Values"): the key's value as it was at most
   * EXPIRY_READ_AHEAD_MS before it expired, read by the leader on the key's primary. A write in that
   * last window that left the TTL alone is not reflected; a TTL change in it cancels the read. User
   * data: never logged, never in `key.processed`. Absent when `valueMissing` says why.
   */
  readonly value?: ExpiredValue;
  /** Why `value` is absent (one of VALUE_MISSING_REASONS); absent when `value` is present. */
  readonly valueMissing?: ValueMissingReason;
}

/**
 * An expired key's value, binary-safe, in Redis's order (a hash's and a set's order is Redis's
 * iteration order; a sorted set's is by score). Sorted-set scores are read as text and parsed, so
 * they keep their double value (`inf`, `-inf` included).
 */
export type ExpiredValue =
  | { readonly type: 'string'; readonly bytes: Buffer }
  | { readonly type: 'hash'; readonly fields: readonly (readonly [Buffer, Buffer])[] }
  | { readonly type: 'list'; readonly items: readonly Buffer[] }
  | { readonly type: 'set'; readonly members: readonly Buffer[] }
  | { readonly type: 'zset'; readonly members: readonly (readonly [Buffer, number])[] };

export type ExpiredValueType = ExpiredValue['type'];

/** The five types a value is captured for (Redis' TYPE names). */
/** Why an event comes without its value: a closed list, kept in core/ (the log catalog and the CDK read it too). */
export {
  EXPIRED_VALUE_TYPES,
  VALUE_MISSING_REASONS,
  type ValueMissingReason,
} from '../../core/captured-values.ts';

export interface HandlerContext {
  /** Fencing token of the leadership grant the call runs under; pass it to systems that can fence. */
  readonly fencingToken: number;
  /**
   * Best effort: aborts when the call times out, when this worker stops leading (the lease deadline
   * timer fired, the lease was lost or released) and at shutdown. After a pause (SIGSTOP, GC, CPU
   * throttling) Node runs I/O callbacks before timers, so code resumed by a reply can still see
   * `aborted === false` for a lease that ended during the pause: check `leaseValid()` before acting.
   */
  readonly signal: AbortSignal;
  /**
   * Synchronous check of the call's leadership grant against the monotonic deadline, read now: true
   * while this worker still leads under the grant the call started with (a renewal of that grant keeps
   * it true), false once the deadline is past, the grant's signal aborted, or a newer grant replaced
   * it. Call it right before each side effect. It cannot recall a request already sent: a call in flight
   * when the lease ended may still act until its next check; a downstream enforces that with
   * `fencingToken` (refusing lower tokens than it has seen).
   */
  leaseValid(): boolean;
  /** Lines of the handler's own events, carrying the key, node and fencingToken of the call. */
  readonly log: LineLogger;
}

export type ExpiryHandler = (event: HandlerEvent, ctx: HandlerContext) => Promise<void> | void;

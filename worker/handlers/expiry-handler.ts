import type { Logger } from '../../core/logger.ts';

/**
 * The handler interface (docs/worker.md). A handler is called once per `expired` event that passes
 * KEY_PATTERN, and only while this worker leads. It may be async; it must honour `ctx.signal`, which
 * aborts when the call times out (HANDLER_TIMEOUT_MS), when this worker stops leading and at shutdown.
 */
export interface HandlerEvent {
  /**
   * `<nodeId>:<seq>`: the same for the same expiry on every worker whose window aligned with the
   * previous leader's processed mark (worker/replay/). Downstreams drop duplicates by it.
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
  /** Position of the event in that primary's numbered stream. */
  readonly seq: number;
  /** Wall-clock ms at which this worker received the event. */
  readonly receivedAt: number;
  /** True when a new leader handles the event from its replay window: the previous leader may have handled it too. */
  readonly replayed: boolean;
}

export interface HandlerContext {
  /** Fencing token of the leadership grant the call runs under; pass it to systems that can fence. */
  readonly fencingToken: number;
  readonly signal: AbortSignal;
  readonly log: Logger;
}

export type ExpiryHandler = (event: HandlerEvent, ctx: HandlerContext) => Promise<void> | void;

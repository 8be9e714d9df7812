import { KeyspaceLeaderError } from '../../core/errors.ts';

/** A handler call did not settle within HANDLER_TIMEOUT_MS; its signal was aborted with this reason. */
export class HandlerTimeoutError extends KeyspaceLeaderError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super('HANDLER_TIMEOUT', `handler did not complete within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** A handler call was aborted because the worker is shutting down or stopped leading. */
export class HandlerAbortedError extends KeyspaceLeaderError {
  readonly reason: 'shutdown' | 'leadership-lost';
  constructor(reason: 'shutdown' | 'leadership-lost') {
    super('HANDLER_ABORTED', `handler call aborted: ${reason}`);
    this.reason = reason;
  }
}

/** The HANDLER module could not be imported, or exports no handler function. */
export class HandlerLoadError extends KeyspaceLeaderError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('HANDLER_LOAD_FAILED', message, options);
    this.path = path;
  }
}

/**
 * A handler call that ended without an outcome the next leader may rely on: for example an outbox
 * append that no replica confirmed (it may vanish in a failover), or a call aborted at shutdown.
 * The processor reports it like a failure (`handler.failed`, `HandlerFailures`) but does not settle
 * the event: the processed mark stays before it, so the successor replays it. Throw a subclass from
 * a handler to ask for that; any other error settles the event (failures are reported, not retried).
 */
export class UnsettledHandlerError extends KeyspaceLeaderError {}

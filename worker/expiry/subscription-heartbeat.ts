import type { Clock } from '../../core/clock.ts';
import { SUBSCRIBER_DEFAULTS } from '../../core/defaults.ts';

/**
 * Notices a subscribed connection that stalls without closing (every packet dropped, a half-open
 * TCP connection, a frozen middlebox): pub/sub alone would wait forever, since a subscriber sends
 * nothing of its own and the server's silence looks like a quiet channel.
 *
 * Progress is judged by bytes read from the socket, not by the PING's reply: any data counts, so a
 * PONG queued behind a large backlog of messages is no stall while the backlog arrives.
 *
 * Every `intervalMs` a tick reads the socket's byte count. A tick that finds nothing read since the
 * previous tick (a quiet tick) sends one PING (at most one outstanding). While a PING is outstanding,
 * `stallTicks` = ceil(`stallTimeoutMs` / `intervalMs`) quiet ticks in a row (counted from the later of
 * the last progress and the PING) declare the connection stalled: `onStall` once, then the heartbeat
 * stops (the caller drops the connection and starts a new heartbeat for the next one).
 *
 * Bound: a stall is reported at most `stallDetectionBoundMs(intervalMs, stallTimeoutMs)` =
 * `(2 + stallTicks) x intervalMs` after the last byte read (2.5 s with the defaults): up to one
 * interval until a tick notices the last progress, one more until the PING, then the timeout.
 *
 * Silence is counted in ticks, not measured with the clock: a timer's callback reads the clock after
 * the other callbacks of its turn, so two ticks one interval apart can measure a few ms less or more
 * than it, and a comparison with the clock slipped a whole interval past the bound each time (seen in
 * CI twice: 2,985 and 2,955 ms after the last byte against the bound's 2,500).
 *
 * A tick that runs late by more than one interval (this process was blocked: a long GC, CPU
 * throttling, SIGSTOP) judges nothing: Node runs timers before it reads the sockets, so data that
 * arrived meanwhile is not counted yet. The count, and the bound, start again from that late tick.
 */
export interface SubscriptionHeartbeatOptions {
  readonly clock: Clock;
  /** Bytes read from the connection's socket so far (monotonic for one connection). */
  readonly bytesRead: () => number;
  /** Sends one PING; settles with its reply, or rejects when the connection closes. */
  readonly ping: () => Promise<unknown>;
  /** The connection stalled: no byte read for `silentMs` with a PING outstanding. Called once. */
  readonly onStall: (silentMs: number) => void;
  /**
   * How often the byte count is checked, and how long an idle connection waits for its PING.
   * @default 500
   */
  readonly intervalMs?: number;
  /**
   * How long a connection may read nothing while a PING is outstanding; must exceed `intervalMs`.
   * Judged in whole intervals: rounded up to a multiple of `intervalMs`.
   * @default 1500
   */
  readonly stallTimeoutMs?: number;
}

export const DEFAULT_HEARTBEAT_INTERVAL_MS = SUBSCRIBER_DEFAULTS.heartbeatIntervalMs;
export const DEFAULT_STALL_TIMEOUT_MS = SUBSCRIBER_DEFAULTS.stallTimeoutMs;

/** Quiet ticks in a row, with a PING outstanding, that declare a stall. */
function stallTicksOf(intervalMs: number, stallTimeoutMs: number): number {
  return Math.ceil(stallTimeoutMs / intervalMs);
}

/** The longest time from the last byte read to `onStall` (event-loop time, see the class comment). */
export function stallDetectionBoundMs(intervalMs: number, stallTimeoutMs: number): number {
  return (2 + stallTicksOf(intervalMs, stallTimeoutMs)) * intervalMs;
}

export class SubscriptionHeartbeat {
  private readonly intervalMs: number;
  /** Quiet ticks in a row, with a PING outstanding, that declare a stall. */
  private readonly stallTicks: number;
  private timer: NodeJS.Timeout | undefined;
  private lastBytes = 0;
  private progressAtMs = 0;
  private lastTickAtMs = 0;
  /** A PING is outstanding (at most one: the next is sent only once this one settled). */
  private pingOutstanding = false;
  /** Quiet ticks since the later of the last progress and the outstanding PING. */
  private quietTicks = 0;
  private stopped = false;

  constructor(private readonly options: SubscriptionHeartbeatOptions) {
    this.intervalMs = options.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    if (!(this.intervalMs > 0)) throw new RangeError('intervalMs must be > 0');
    if (!(stallTimeoutMs > this.intervalMs)) throw new RangeError('stallTimeoutMs must exceed intervalMs');
    this.stallTicks = stallTicksOf(this.intervalMs, stallTimeoutMs);
  }

  /** Starts watching (the connection counts as having made progress now). Idempotent. */
  start(): void {
    if (this.timer || this.stopped) return;
    const nowMs = this.options.clock.monotonicMs();
    this.lastBytes = this.options.bytesRead();
    this.progressAtMs = nowMs;
    this.lastTickAtMs = nowMs;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops for good (connection closed or replaced). Idempotent. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    if (this.stopped) return;
    const nowMs = this.options.clock.monotonicMs();
    const late = nowMs - this.lastTickAtMs > 2 * this.intervalMs;
    this.lastTickAtMs = nowMs;
    const bytes = this.options.bytesRead();
    if (bytes !== this.lastBytes || late) {
      this.lastBytes = bytes;
      this.progressAtMs = nowMs;
      this.quietTicks = 0;
      return;
    }
    if (!this.pingOutstanding) {
      this.sendPing();
      return;
    }
    this.quietTicks += 1;
    if (this.quietTicks >= this.stallTicks) {
      this.stop();
      this.options.onStall(Math.round(nowMs - this.progressAtMs));
    }
  }

  private sendPing(): void {
    this.pingOutstanding = true;
    this.quietTicks = 0;
    const clear = () => {
      this.pingOutstanding = false;
    };
    // A rejection means the connection closed (its own close handling follows) or the server
    // answered with an error: either way the PING is no longer outstanding.
    this.options.ping().then(clear, clear);
  }
}

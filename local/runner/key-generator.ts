/**
 * Sets keys `<prefix><n>` (n = 1, 2, ...) with a TTL at a steady rate that can change while it runs.
 * Names differ only in the counter, so their CRC16 slots spread over every shard. The schedule is
 * computed from the clock, not from timer counts: a late timer catches up (up to `maxBurstMs` worth of
 * keys; beyond that the keys are skipped and counted, so an overloaded machine lowers the rate instead
 * of piling up a backlog). In-flight SETs are bounded for the same reason (a failover queues them).
 * With `wallNow`, each key gets an absolute deadline (`SET ... PXAT wallNow() + ttlMs`) that `onSet`
 * reports, so a watcher on the same clock can measure each expiry's lag from its deadline.
 */

/** The one command the generator needs (an ioredis Cluster satisfies it): PX ttl, or PXAT deadline. */
export interface KeySetter {
  set(key: string, value: string, mode: 'PX' | 'PXAT', ms: number): Promise<unknown>;
}

export interface KeyGeneratorOptions {
  readonly client: KeySetter;
  readonly prefix: string;
  readonly ttlMs: number;
  readonly keysPerSecond: number;
  /** Monotonic ms. */
  readonly now?: () => number;
  readonly tickMs?: number;
  readonly maxBurstMs?: number;
  readonly maxInFlight?: number;
  /**
   * Wall-clock ms (the clock Redis compares deadlines with, on this machine). Set: keys are set with
   * PXAT `wallNow() + ttlMs` and `onSet` gets that deadline. Unset: PX `ttlMs`, no deadline.
   */
  readonly wallNow?: () => number;
  /** After each successful SET (the runner counts keys per owning primary); the deadline with `wallNow`. */
  readonly onSet?: (key: string, deadlineMs: number | undefined) => void;
  /** First error of a run of errors, and each time the message changes. */
  readonly onError?: (error: Error) => void;
}

/** Counter values tried per key when a key filter is set. */
const MAX_FILTER_TRIES = 1000;

export interface KeyGeneratorCounts {
  /** SETs acknowledged. */
  readonly sent: number;
  readonly failed: number;
  /** Keys the schedule asked for but that were not sent (behind by more than a burst, or too many in flight). */
  readonly skipped: number;
  readonly inFlight: number;
}

export class KeyGenerator {
  private timer: NodeJS.Timeout | undefined;
  private counter = 0;
  private sentCount = 0;
  private failedCount = 0;
  private skippedCount = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private rateValue: number;
  /** Schedule origin: keys due = rate * (now - since) / 1000 - issuedSince. */
  private since = 0;
  private issuedSince = 0;
  private lastErrorMessage: string | undefined;
  private readonly now: () => number;
  private keyFilter: ((key: string) => boolean) | undefined;

  constructor(private readonly options: KeyGeneratorOptions) {
    this.rateValue = options.keysPerSecond;
    this.now = options.now ?? (() => performance.now());
  }

  get keysPerSecond(): number {
    return this.rateValue;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  counts(): KeyGeneratorCounts {
    return {
      sent: this.sentCount,
      failed: this.failedCount,
      skipped: this.skippedCount,
      inFlight: this.inFlight.size,
    };
  }

  start(): void {
    if (this.timer) return;
    this.since = this.now();
    this.issuedSince = 0;
    this.timer = setInterval(() => this.tick(), this.options.tickMs ?? 10);
  }

  setRate(keysPerSecond: number): void {
    if (!(keysPerSecond >= 0) || !Number.isFinite(keysPerSecond)) {
      throw new RangeError(`keys per second must be a finite number >= 0, got ${keysPerSecond}`);
    }
    // Restart the schedule so the new rate applies from now on, without a catch-up burst.
    this.tick();
    this.rateValue = keysPerSecond;
    this.since = this.now();
    this.issuedSince = 0;
  }

  /**
   * From now on, sets only keys `accept` takes (chaos: keys of some primaries only); counter values
   * it refuses are skipped, the rate stays the same. Undefined sets every key again.
   */
  setKeyFilter(accept: ((key: string) => boolean) | undefined): void {
    this.keyFilter = accept;
  }

  /** Issues the keys due now; called by the timer (public for tests with fake timers). */
  tick(): void {
    if (!this.timer) return;
    const now = this.now();
    const due = Math.floor((this.rateValue * (now - this.since)) / 1000) - this.issuedSince;
    if (due <= 0) return;
    const maxBurst = Math.max(1, Math.ceil((this.rateValue * (this.options.maxBurstMs ?? 1000)) / 1000));
    const room = Math.max(0, (this.options.maxInFlight ?? 10_000) - this.inFlight.size);
    const send = Math.min(due, maxBurst, room);
    this.skippedCount += due - send;
    this.issuedSince += due;
    for (let i = 0; i < send; i++) this.setOne();
  }

  private setOne(): void {
    let key = `${this.options.prefix}${++this.counter}`;
    // Bounded: a filter nothing passes degrades to unfiltered keys rather than a busy loop.
    for (let tries = 0; this.keyFilter && !this.keyFilter(key) && tries < MAX_FILTER_TRIES; tries++) {
      key = `${this.options.prefix}${++this.counter}`;
    }
    const { wallNow, ttlMs } = this.options;
    const deadlineMs = wallNow ? Math.round(wallNow()) + ttlMs : undefined;
    // A small session-like value, so value capture has something to show (its size, never its text).
    const value = `{"session":${this.counter},"cart":["item-${this.counter % 97}"]}`;
    const sent =
      deadlineMs === undefined
        ? this.options.client.set(key, value, 'PX', ttlMs)
        : this.options.client.set(key, value, 'PXAT', deadlineMs);
    const done: Promise<void> = sent.then(
      () => {
        this.sentCount++;
        this.lastErrorMessage = undefined;
        this.options.onSet?.(key, deadlineMs);
      },
      (error: unknown) => {
        this.failedCount++;
        const err = error instanceof Error ? error : new Error(String(error));
        if (err.message !== this.lastErrorMessage) {
          this.lastErrorMessage = err.message;
          this.options.onError?.(err);
        }
      },
    );
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  /** Stops issuing and waits for the SETs in flight. Idempotent. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inFlight]);
  }
}

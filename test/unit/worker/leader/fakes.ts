import { vi } from 'vitest';
import type { Clock } from '../../../../core/clock.ts';
import type { LeaseTimings } from '../../../../core/config.ts';
import type { LeaderRecord } from '../../../../core/leader-record.ts';
import { createLogger, type Logger } from '../../../../core/logger.ts';
import { EmfMetrics } from '../../../../core/metrics.ts';
import type { LeaderElectorConfig } from '../../../../worker/leader/leader-elector.ts';
import type { LeaderRecordStore } from '../../../../worker/leader/leader-record-store.ts';
import type { LeaderCallbacks, StoppedLeadingReason } from '../../../../worker/leader/leadership.ts';
import type { Lease, LeaseHold } from '../../../../worker/leader/lease.ts';
import { LeaseLostError, LeaseUnavailableError } from '../../../../worker/leader/lease-errors.ts';
import type { ReleasedChannel, ReleasedMessage } from '../../../../worker/leader/released-channel.ts';
import { decodeStrict } from '../../../support/log-capture.ts';

/**
 * In-memory stand-ins for the lease, the released channel and the record store, sharing one "Redis"
 * (a FakeWorld) and the fake timers' clock. Time: vitest fake timers fake Date; the monotonic clock
 * is Date.now() - T0, so advancing timers advances it, and vi.setSystemTime moves it WITHOUT running
 * timers (a paused process).
 */

export const T0 = 1_700_000_000_000;

export const testClock: Clock = {
  monotonicMs: () => Date.now() - T0,
  wallMs: () => Date.now(),
};

export const DEFAULT_TIMINGS: LeaseTimings = {
  leaseTtlMs: 3000,
  leaseRenewIntervalMs: 1000,
  leaseRenewDeadlineMs: 2000,
  leaseRetryMs: 250,
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export type Failure = 'unavailable' | 'lost' | undefined;

/** One lease key with an owner and an expiry on the fake clock, plus the fencing counter. */
export class FakeWorld {
  owner: string | undefined;
  expiresAtMs = 0;
  epoch = 0;
  records: LeaderRecord | undefined;
  readonly published: ReleasedMessage[] = [];
  private readonly listeners = new Set<(m: ReleasedMessage) => void>();

  isHeldBy(owner: string): boolean {
    return this.owner === owner && testClock.monotonicMs() < this.expiresAtMs;
  }
  isFree(): boolean {
    return this.owner === undefined || testClock.monotonicMs() >= this.expiresAtMs;
  }

  channel(): ReleasedChannel {
    return {
      onReleased: (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      },
      publish: async (message) => {
        this.published.push(message);
        for (const listener of [...this.listeners]) listener(message);
      },
    };
  }

  listenerCount(): number {
    return this.listeners.size;
  }
}

interface FakeHold extends LeaseHold {
  readonly owner: string;
}

/** A Lease over a FakeWorld; failures and latencies are scripted per operation. */
export class FakeLease implements Lease {
  readonly mode = 'quorum' as const;
  readonly calls: { op: 'acquire' | 'extend' | 'release'; atMs: number; token?: number }[] = [];
  acquireLatencyMs = 0;
  extendLatencyMs = 0;
  /** Next extends fail this way (undefined = succeed); shift()ed per call when a list. */
  extendFailures: Failure[] = [];
  extendFailure: Failure;
  acquireFailure: Failure;
  private counter = 0;

  constructor(
    private readonly world: FakeWorld,
    private readonly name: string,
  ) {}

  describe() {
    return { mode: this.mode, name: this.name };
  }

  async acquire(ttlMs: number): Promise<LeaseHold | undefined> {
    // Decided when called (as a Redis script would), answered after the scripted latency.
    const startMs = testClock.monotonicMs();
    this.calls.push({ op: 'acquire', atMs: startMs });
    const failure = this.acquireFailure;
    let hold: FakeHold | undefined;
    if (failure === undefined && this.world.isFree()) {
      const owner = `${this.name}#${++this.counter}`;
      this.world.owner = owner;
      this.world.expiresAtMs = startMs + ttlMs;
      hold = { fencingToken: ++this.world.epoch, owner };
    }
    if (this.acquireLatencyMs > 0) await sleep(this.acquireLatencyMs);
    if (failure === 'unavailable') throw new LeaseUnavailableError('acquire', 'scripted');
    return hold;
  }

  async extend(hold: LeaseHold, ttlMs: number): Promise<void> {
    const startMs = testClock.monotonicMs();
    this.calls.push({ op: 'extend', atMs: startMs, token: hold.fencingToken });
    if (this.extendLatencyMs > 0) await sleep(this.extendLatencyMs);
    const failure = this.extendFailures.length > 0 ? this.extendFailures.shift() : this.extendFailure;
    if (failure === 'unavailable') throw new LeaseUnavailableError('extend', 'scripted');
    if (failure === 'lost' || !this.world.isHeldBy((hold as FakeHold).owner)) throw new LeaseLostError(1, 1);
    this.world.expiresAtMs = startMs + ttlMs;
  }

  async release(hold: LeaseHold): Promise<void> {
    this.calls.push({ op: 'release', atMs: testClock.monotonicMs(), token: hold.fencingToken });
    if (this.world.owner === (hold as FakeHold).owner) this.world.owner = undefined;
  }

  count(op: 'acquire' | 'extend' | 'release'): number {
    return this.calls.filter((c) => c.op === op).length;
  }
}

export class FakeRecordStore implements LeaderRecordStore {
  readonly writes: LeaderRecord[] = [];
  constructor(private readonly world: FakeWorld) {}
  async read(): Promise<LeaderRecord | undefined> {
    return this.world.records;
  }
  async write(record: LeaderRecord): Promise<boolean> {
    this.writes.push(record);
    const stored = this.world.records;
    if (stored && stored.fencingToken > record.fencingToken) return false;
    this.world.records = record;
    return true;
  }
}

export interface RecordedCallbacks extends LeaderCallbacks {
  readonly events: { what: string; atMs: number; reason?: StoppedLeadingReason; token?: number }[];
  signal: AbortSignal | undefined;
}

export function recordingCallbacks(): RecordedCallbacks {
  const callbacks: RecordedCallbacks = {
    events: [],
    signal: undefined,
    onStartedLeading(signal, fencingToken) {
      callbacks.signal = signal;
      callbacks.events.push({ what: 'started', atMs: testClock.monotonicMs(), token: fencingToken });
    },
    onStoppedLeading(reason) {
      callbacks.events.push({ what: 'stopped', atMs: testClock.monotonicMs(), reason });
    },
    onNewLeader(record) {
      callbacks.events.push({
        what: 'new-leader',
        atMs: testClock.monotonicMs(),
        token: record.fencingToken,
      });
    },
  };
  return callbacks;
}

export interface LogLine {
  readonly event: string;
  readonly level: string;
  readonly [field: string]: unknown;
}

export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createLogger({ level: 'debug', write: (line) => lines.push(decodeStrict(line)) });
  return { logger, lines };
}

/** A complete elector config over `world`; override any field. */
export function electorConfig(
  world: FakeWorld,
  name: string,
  overrides: Partial<LeaderElectorConfig> = {},
): LeaderElectorConfig & {
  lease: FakeLease;
  recordStore: FakeRecordStore;
  callbacks: RecordedCallbacks;
  lines: LogLine[];
  gauges: number[];
} {
  const { logger, lines } = capturingLogger();
  const metrics = new EmfMetrics({ namespace: 'Test', leaderName: 'test', write: () => {} });
  const gauges: number[] = [];
  const gauge = metrics.gauge.bind(metrics);
  vi.spyOn(metrics, 'gauge').mockImplementation((metric, value, unit) => {
    if (metric === 'IsLeader') gauges.push(value);
    gauge(metric, value, unit);
  });
  return {
    lease: new FakeLease(world, name),
    releasedChannel: world.channel(),
    recordStore: new FakeRecordStore(world),
    workerId: name,
    taskArn: null,
    timings: DEFAULT_TIMINGS,
    clock: testClock,
    logger,
    metrics,
    callbacks: recordingCallbacks(),
    random: () => 0.5,
    lines,
    gauges,
    ...overrides,
  } as LeaderElectorConfig & {
    lease: FakeLease;
    recordStore: FakeRecordStore;
    callbacks: RecordedCallbacks;
    lines: LogLine[];
    gauges: number[];
  };
}

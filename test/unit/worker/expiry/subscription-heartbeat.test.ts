import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  SubscriptionHeartbeat,
  type SubscriptionHeartbeatOptions,
  stallDetectionBoundMs,
} from '../../../../worker/expiry/subscription-heartbeat.ts';
import { fakeClock } from '../support/fakes.ts';

/**
 * A connection the test controls: bytes "read" and PINGs answered (`pong`) or not. `lateTick` makes
 * the tick due at `atMs` read its clock `byMs` late (a timer's callback reads the clock after the
 * other callbacks of its turn).
 */
function setup(
  options: {
    lateTick?: { atMs: number; byMs: number };
    limits?: Pick<SubscriptionHeartbeatOptions, 'intervalMs' | 'stallTimeoutMs'>;
  } = {},
) {
  const { lateTick } = options;
  let bytes = 0;
  const pings: { resolve: () => void }[] = [];
  const stalls: number[] = [];
  const heartbeat = new SubscriptionHeartbeat({
    clock: lateTick
      ? {
          monotonicMs: () => Date.now() + (Date.now() === lateTick.atMs ? lateTick.byMs : 0),
          wallMs: () => Date.now(),
        }
      : fakeClock,
    bytesRead: () => bytes,
    ping: () =>
      new Promise<void>((resolve) => {
        pings.push({ resolve });
      }),
    onStall: (silentMs) => stalls.push(silentMs),
    ...options.limits,
  });
  return {
    heartbeat,
    pings,
    stalls,
    read: (count: number) => {
      bytes += count;
    },
    /** The server answers the outstanding PING: its PONG is bytes read too. */
    pong: () => {
      bytes += 7;
      pings.shift()?.resolve();
    },
  };
}

const INTERVAL_MS = DEFAULT_HEARTBEAT_INTERVAL_MS;
const BOUND_MS = stallDetectionBoundMs(DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_STALL_TIMEOUT_MS);

describe('SubscriptionHeartbeat (sequence 4)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sequence 4: a connection that stops delivering bytes is declared stalled within the stated bound', async () => {
    const { heartbeat, stalls, pings } = setup();
    heartbeat.start();
    // Nothing ever arrives again (every packet dropped, nothing closed).
    await vi.advanceTimersByTimeAsync(BOUND_MS);
    expect(pings.length).toBe(1);
    expect(stalls).toHaveLength(1);
    expect(stalls[0]).toBeLessThanOrEqual(BOUND_MS);
    expect(stalls[0]).toBeGreaterThanOrEqual(DEFAULT_STALL_TIMEOUT_MS);
    // Reported once; the caller drops the connection and starts a new heartbeat for the next one.
    await vi.advanceTimersByTimeAsync(10 * BOUND_MS);
    expect(stalls).toHaveLength(1);
  });

  it('sequence 4: the bound holds when the stall begins right after a burst of messages', async () => {
    const { heartbeat, stalls, read } = setup();
    heartbeat.start();
    for (let ms = 0; ms < 3000; ms += 10) {
      read(100);
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(stalls).toEqual([]);
    const lastByteAtMs = Date.now();
    await vi.advanceTimersByTimeAsync(BOUND_MS);
    expect(stalls).toHaveLength(1);
    expect(Date.now() - lastByteAtMs).toBeLessThanOrEqual(BOUND_MS);
  });

  // A timer's callback reads the clock after the other callbacks of its turn, so any tick may read it
  // a few ms late. Seen in CI (2026-12-04, the chaos suite's stalled-subscription), each time one whole
  // interval past the bound: 2,985 ms after the drop with the tick that sends the PING 1 ms late (the
  // tick due stallTimeoutMs later measured 1 ms short of it), 2,955 ms with the tick that notices the
  // last bytes 5 ms late (the next one measured 495 ms of silence, short of the interval, and sent no
  // PING). The last byte arrives just after the start: tick 1 notices it, tick 2 sends the PING.
  it.each([
    { lateTick: 2, byMs: 1, what: 'the tick that sends the PING' },
    { lateTick: 1, byMs: 5, what: 'the tick that notices the last bytes' },
    { lateTick: 3, byMs: 20, what: 'a tick while the PING is outstanding' },
    { lateTick: 5, byMs: 20, what: 'the tick due to declare the stall' },
  ])('sequence 4: the bound holds when $what reads its clock $byMs ms late', async ({ lateTick, byMs }) => {
    const { heartbeat, stalls, read } = setup({
      lateTick: { atMs: Date.now() + lateTick * INTERVAL_MS, byMs },
    });
    heartbeat.start();
    await vi.advanceTimersByTimeAsync(1);
    read(100);
    // Within the bound from that last byte.
    await vi.advanceTimersByTimeAsync(BOUND_MS);
    expect(stalls).toHaveLength(1);
    heartbeat.stop();
  });

  it('an idle connection is pinged every interval and stays healthy while PONGs come back', async () => {
    const { heartbeat, stalls, pings, pong } = setup();
    heartbeat.start();
    for (let i = 0; i < 20; i++) {
      await vi.advanceTimersByTimeAsync(INTERVAL_MS);
      if (pings.length > 0) pong();
    }
    expect(stalls).toEqual([]);
    heartbeat.stop();
  });

  it('a busy connection is not pinged: messages are progress', async () => {
    const { heartbeat, stalls, pings, read } = setup();
    heartbeat.start();
    for (let i = 0; i < 100; i++) {
      read(50);
      await vi.advanceTimersByTimeAsync(INTERVAL_MS / 5);
    }
    expect(pings).toHaveLength(0);
    expect(stalls).toEqual([]);
  });

  it('a PONG queued behind a large backlog is no stall while bytes keep arriving', async () => {
    const { heartbeat, stalls, pings, read, pong } = setup();
    heartbeat.start();
    await vi.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(pings).toHaveLength(1);
    // The backlog drains for far longer than the stall timeout before the PONG shows.
    for (let ms = 0; ms < 5 * DEFAULT_STALL_TIMEOUT_MS; ms += 100) {
      read(64 * 1024);
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(stalls).toEqual([]);
    expect(pings).toHaveLength(1);
    pong();
    // The next idle interval sends the next PING: the first one is no longer outstanding.
    await vi.advanceTimersByTimeAsync(3 * INTERVAL_MS);
    expect(pings).toHaveLength(1);
    expect(stalls).toEqual([]);
  });

  it('a late tick (this process was blocked) is not judged: the socket has not been read yet', async () => {
    const { heartbeat, stalls, pings } = setup();
    heartbeat.start();
    await vi.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(pings).toHaveLength(1);
    // The event loop was blocked past the stall timeout: timers run before the socket's data is read.
    vi.setSystemTime(Date.now() + 3 * DEFAULT_STALL_TIMEOUT_MS);
    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(stalls).toEqual([]);
    // Still nothing afterwards: then it is a stall, within the bound counted from the late tick.
    await vi.advanceTimersByTimeAsync(BOUND_MS);
    expect(stalls).toHaveLength(1);
  });

  it('stop ends the heartbeat: no PING, no stall afterwards', async () => {
    const { heartbeat, stalls, pings } = setup();
    heartbeat.start();
    heartbeat.stop();
    await vi.advanceTimersByTimeAsync(10 * BOUND_MS);
    expect(pings).toHaveLength(0);
    expect(stalls).toEqual([]);
  });

  it('a stall timeout between whole intervals is rounded up to them, and the bound says so', async () => {
    expect(stallDetectionBoundMs(500, 1200)).toBe(2500);
    const { heartbeat, stalls, read } = setup({
      limits: { intervalMs: 500, stallTimeoutMs: 1200 },
    });
    heartbeat.start();
    await vi.advanceTimersByTimeAsync(1);
    read(1);
    // PING at 1,000; 1,200 ms of silence after it is not reached at the tick at 2,000.
    await vi.advanceTimersByTimeAsync(1999);
    expect(stalls).toEqual([]);
    await vi.advanceTimersByTimeAsync(500);
    expect(stalls).toHaveLength(1);
    heartbeat.stop();
  });

  it('rejects a stall timeout that does not exceed the interval', () => {
    expect(
      () =>
        new SubscriptionHeartbeat({
          clock: fakeClock,
          bytesRead: () => 0,
          ping: () => Promise.resolve(),
          onStall: () => {},
          intervalMs: 500,
          stallTimeoutMs: 500,
        }),
    ).toThrow(RangeError);
  });
});

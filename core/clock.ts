/**
 * Time as a dependency. `monotonicMs` drives every lease deadline (it never jumps with NTP or a
 * changed wall clock); `wallMs` is for timestamps that leave the process (logs, leader record) and
 * for comparisons with the primaries' clocks (key deadlines, through the offsets of
 * worker/expiry/primary-clocks.ts).
 */
export interface Clock {
  monotonicMs(): number;
  wallMs(): number;
}

export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

/** How far `preciseClock` may part from Date.now() before it takes the wall clock's value again. */
export const PRECISE_CLOCK_STEP_TOLERANCE_MS = 2;

let preciseOriginMs = performance.timeOrigin;

/**
 * `systemClock` with a wall clock to a fraction of a ms, for on-time expiry: Redis keeps deadlines
 * in whole ms and `TIME` answers in microseconds, so a wall clock that counts whole ms (Date.now())
 * puts up to 1 ms of error into every offset estimate and judges a timer that ran on time as early.
 * The reading is the monotonic clock from an origin on the wall clock, so it follows NTP's slewing
 * with it; when the wall clock steps (it parts from Date.now() by more than the tolerance) the origin
 * is moved to the wall clock at that reading (the middle of its ms). Not for values that leave the process as whole ms.
 */
export const preciseClock: Clock = {
  monotonicMs: systemClock.monotonicMs,
  wallMs: () => {
    const monotonicMs = performance.now();
    const readingMs = preciseOriginMs + monotonicMs;
    const wallMs = Date.now();
    if (
      readingMs < wallMs - PRECISE_CLOCK_STEP_TOLERANCE_MS ||
      readingMs > wallMs + 1 + PRECISE_CLOCK_STEP_TOLERANCE_MS
    ) {
      // Date.now() counts whole ms: the middle of its ms is the nearest guess of the fraction.
      preciseOriginMs = wallMs + 0.5 - monotonicMs;
      return wallMs + 0.5;
    }
    return readingMs;
  },
};

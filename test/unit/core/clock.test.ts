import { afterEach, describe, expect, it, vi } from 'vitest';
import { PRECISE_CLOCK_STEP_TOLERANCE_MS, preciseClock } from '../../../core/clock.ts';

describe('preciseClock', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('reads the wall clock to a fraction of a ms, within the tolerance of Date.now()', () => {
    let fractional = 0;
    for (let i = 0; i < 1000; i++) {
      const before = Date.now();
      const preciseMs = preciseClock.wallMs();
      const after = Date.now();
      if (!Number.isInteger(preciseMs)) fractional++;
      expect(preciseMs).toBeGreaterThanOrEqual(before - PRECISE_CLOCK_STEP_TOLERANCE_MS);
      expect(preciseMs).toBeLessThan(after + 1 + PRECISE_CLOCK_STEP_TOLERANCE_MS);
    }
    // Date.now() alone would give 0 here; a sub-ms clock almost never lands on a whole ms.
    expect(fractional).toBeGreaterThan(900);
  });

  it('follows a step of the wall clock (NTP, a changed clock) at its next reading', () => {
    const steppedMs = Date.now() + 60_000;
    vi.spyOn(Date, 'now').mockReturnValue(steppedMs);
    const preciseMs = preciseClock.wallMs();
    expect(Math.abs(preciseMs - steppedMs)).toBeLessThanOrEqual(1);
    vi.restoreAllMocks();
    // And back again.
    expect(Math.abs(preciseClock.wallMs() - Date.now())).toBeLessThanOrEqual(
      PRECISE_CLOCK_STEP_TOLERANCE_MS + 1,
    );
  });
});

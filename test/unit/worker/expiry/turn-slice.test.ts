import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../../../core/clock.ts';
import { TurnSlice } from '../../../../worker/expiry/turn-slice.ts';

describe('TurnSlice', () => {
  let nowMs = 0;
  const clock: Clock = { monotonicMs: () => nowMs, wallMs: () => nowMs };

  beforeEach(() => {
    vi.useFakeTimers();
    nowMs = 0;
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is spent once a turn has run its slice since the first check, and opens anew next turn', () => {
    const slice = new TurnSlice(clock, 2);
    expect(slice.spent()).toBe(false);
    nowMs = 1.9;
    expect(slice.spent()).toBe(false);
    nowMs = 2;
    expect(slice.spent()).toBe(true);
    nowMs = 50;
    expect(slice.spent()).toBe(true);
    // The turn ends (its setImmediate runs): the next check opens a new slice from its own time.
    vi.runOnlyPendingTimers();
    expect(slice.spent()).toBe(false);
    nowMs = 51.5;
    expect(slice.spent()).toBe(false);
    nowMs = 52;
    expect(slice.spent()).toBe(true);
  });

  it('queues one turn end per slice, none in a turn without checks', () => {
    const slice = new TurnSlice(clock, 2);
    expect(vi.getTimerCount()).toBe(0);
    for (let i = 0; i < 100; i++) slice.spent();
    expect(vi.getTimerCount()).toBe(1);
  });

  it('refuses a slice that is not positive', () => {
    expect(() => new TurnSlice(clock, 0)).toThrow(RangeError);
    expect(() => new TurnSlice(clock, Number.NaN)).toThrow(RangeError);
  });
});

import { describe, expect, it } from 'vitest';
import { nextRate, RATE_STEPS } from '../../../../local/runner/local-runner.ts';

describe('nextRate (the + and - keys)', () => {
  it('steps up and down through the rate ladder, staying at its ends', () => {
    expect(nextRate(50, 1)).toBe(100);
    expect(nextRate(50, -1)).toBe(20);
    expect(nextRate(0, -1)).toBe(0);
    expect(nextRate(50_000, 1)).toBe(50_000);
  });

  it('moves a rate that is not on the ladder to the nearest step in that direction', () => {
    expect(nextRate(70, 1)).toBe(100);
    expect(nextRate(70, -1)).toBe(50);
    expect(RATE_STEPS).toContain(50);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { voteTimeoutFor } from '../../../../worker/leader/redlock-quorum.ts';
import { decodeReleasedMessage } from '../../../../worker/leader/released-channel.ts';
import { jitteredRetryDelayMs, RETRY_JITTER_FRACTION } from '../../../../worker/leader/retry-delay.ts';

describe('jitteredRetryDelayMs', () => {
  it('stays within retry +- 10 % for any random value, including out-of-range ones', () => {
    expect(RETRY_JITTER_FRACTION).toBe(0.1);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.double({ min: -1, max: 2, noNaN: true }),
        (retryMs, r) => {
          const delay = jitteredRetryDelayMs(retryMs, () => r);
          expect(delay).toBeGreaterThanOrEqual(Math.round(retryMs * 0.9));
          expect(delay).toBeLessThanOrEqual(Math.round(retryMs * 1.1));
        },
      ),
    );
    expect(jitteredRetryDelayMs(250, () => 0)).toBe(225);
    expect(jitteredRetryDelayMs(250, () => 0.5)).toBe(250);
    expect(jitteredRetryDelayMs(250, () => 0.999_999)).toBe(275);
  });
});

describe('voteTimeoutFor', () => {
  it('is min(300 ms, TTL / 10), at least 1 ms', () => {
    expect(voteTimeoutFor(3000)).toBe(300);
    expect(voteTimeoutFor(30_000)).toBe(300);
    expect(voteTimeoutFor(1500)).toBe(150);
    expect(voteTimeoutFor(3)).toBe(1);
  });
});

describe('decodeReleasedMessage', () => {
  it('accepts what a leader publishes and ignores anything else', () => {
    expect(
      decodeReleasedMessage('{"workerId":"a","fencingToken":3,"releasedAt":"2024-01-01T00:00:00.000Z"}'),
    ).toEqual({
      workerId: 'a',
      fencingToken: 3,
      releasedAt: '2024-01-01T00:00:00.000Z',
    });
    expect(decodeReleasedMessage('released')).toBeUndefined();
    expect(decodeReleasedMessage('{"workerId":3}')).toBeUndefined();
  });
});

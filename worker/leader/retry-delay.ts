/**
 * Follower retry delays: `retryMs` +- RETRY_JITTER_FRACTION, uniformly, so followers that started
 * together (a deploy) do not hit the members in lockstep and split the votes. The upper bound enters
 * the worst-case crash gap (TTL + retryMs * (1 + RETRY_JITTER_FRACTION) + one acquire round trip).
 */
export const RETRY_JITTER_FRACTION = 0.1;

export function jitteredRetryDelayMs(retryMs: number, random: () => number): number {
  const unit = Math.min(1, Math.max(0, random()));
  return Math.round(retryMs * (1 + RETRY_JITTER_FRACTION * (2 * unit - 1)));
}

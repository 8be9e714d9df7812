/**
 * The closed lists of value capture (issue 14) that the worker's handler interface
 * (worker/handlers/expiry-handler.ts, which re-exports them), the log catalog (core/log-events.ts:
 * `key.processed`) and the CDK dashboard (cdk/metric-names.ts: ValuesMissing by Reason) share. Here
 * because core/ imports nothing of worker/.
 */

/** The five types a value is captured for (Redis' TYPE names; ExpiredValue['type']). */
export const EXPIRED_VALUE_TYPES = ['string', 'hash', 'list', 'set', 'zset'] as const;

/**
 * Why an event comes without its value (a closed list; README "Values", docs/precise-expiry.md):
 * - `capture-off`: CAPTURE_VALUES=false (or on-time expiry is off);
 * - `not-tracked`: the key was not in this worker's deadline index (set during a gap, dropped for
 *   capacity, a primary on native expiry): nobody knew when to read it;
 * - `too-large`: over VALUE_MAX_BYTES (sizes are checked before anything is read);
 * - `unsupported-type`: a stream, or a module type;
 * - `ttl-changed`: the TTL moved after the read (the key was read again for the new deadline unless
 *   too late), or the read found no TTL;
 * - `read-late`: the read ran after the deadline (the key was gone, or the worker was behind);
 * - `leader-changed`: the value was read by another worker (a new leader replays, or the read ran
 *   under an earlier term);
 * - `over-budget`: held values were at VALUE_BUDGET_BYTES when the read was due;
 * - `read-failed`: the read's reply was an error (a connection, a timeout, CLUSTERDOWN).
 */
export const VALUE_MISSING_REASONS = [
  'capture-off',
  'not-tracked',
  'too-large',
  'unsupported-type',
  'ttl-changed',
  'read-late',
  'leader-changed',
  'over-budget',
  'read-failed',
] as const;

export type ValueMissingReason = (typeof VALUE_MISSING_REASONS)[number];

/**
 * Time as a dependency. `monotonicMs` drives every lease deadline (it never jumps with NTP or a
 * changed wall clock); `wallMs` is only for timestamps that leave the process (logs, leader record).
 */
export interface Clock {
  monotonicMs(): number;
  wallMs(): number;
}

export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

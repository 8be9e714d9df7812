import type { Clock } from '../../core/clock.ts';

/**
 * Work that runs per event (a message decoded, an event handed on) reads the clock every this many
 * events: a clock read per event would cost more than it saves.
 */
export const SLICE_CHECK_EVERY = 8;

/**
 * A time budget per turn of the event loop, for work that comes in bursts (a subscriber's backlog, a
 * queue of handler calls). Work checks `spent()` as it goes and, once it answers true, stops and
 * resumes in the next turn (setImmediate): timers (the lease renewal), other sockets (the replies to
 * its votes) and the other stages then run between slices, however large the burst.
 *
 * The first `spent()` of a turn opens the slice; a setImmediate queued by that call closes it (it runs
 * after this turn's microtasks, timers and I/O callbacks), so the next check opens a new one. A turn
 * in which nothing checks costs nothing.
 */
export class TurnSlice {
  private startedAtMs: number | undefined;
  private readonly close = () => {
    this.startedAtMs = undefined;
  };

  constructor(
    private readonly clock: Clock,
    /** Work per turn, in ms of the clock's monotonic time. */
    readonly sliceMs: number,
  ) {
    if (!(sliceMs > 0)) throw new RangeError(`sliceMs must be > 0, got ${sliceMs}`);
  }

  /** True once this turn has run `sliceMs` since its first check: stop, and resume next turn. */
  spent(): boolean {
    const nowMs = this.clock.monotonicMs();
    if (this.startedAtMs === undefined) {
      this.startedAtMs = nowMs;
      setImmediate(this.close);
      return false;
    }
    return nowMs - this.startedAtMs >= this.sliceMs;
  }
}

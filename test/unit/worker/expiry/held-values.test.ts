import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { expiredValueSize } from '../../../../worker/expiry/expired-value.ts';
import {
  ELEMENT_OVERHEAD_BYTES,
  ENTRY_OVERHEAD_BYTES,
  HeldValues,
  type HeldValuesOptions,
  heldValueCharge,
  MIN_VALUE_CHARGE_BYTES,
  type ValueReservation,
} from '../../../../worker/expiry/held-values.ts';
import type { ExpiredValue } from '../../../../worker/handlers/expiry-handler.ts';
import { fakeClock } from '../support/fakes.ts';

const T0 = 1_700_000_000_000;
const HOLD_MS = 5000;
const SWEEP_MS = 1000;

const str = (text: string): ExpiredValue => ({ type: 'string', bytes: Buffer.from(text) });
/** The charge of `value` under `key`, computed independently of the store's own bookkeeping. */
const chargeOf = (key: string, value: ExpiredValue) => heldValueCharge(key.length, expiredValueSize(value));

function store(overrides: Partial<HeldValuesOptions> = {}): HeldValues {
  return new HeldValues({
    budgetBytes: 10_000,
    clock: fakeClock,
    offsetForKey: () => 0,
    holdTimeoutMs: HOLD_MS,
    sweepIntervalMs: SWEEP_MS,
    ...overrides,
  });
}

describe('heldValueCharge', () => {
  it('is payload + the per-element overhead of the type + the per-entry overhead + the key', () => {
    const cases: [ExpiredValue, number, number][] = [
      [{ type: 'string', bytes: Buffer.alloc(50) }, 50, 1],
      [{ type: 'list', items: [Buffer.alloc(3), Buffer.alloc(0)] }, 3, 2],
      [{ type: 'set', members: [Buffer.alloc(4)] }, 4, 1],
      [{ type: 'hash', fields: [[Buffer.alloc(2), Buffer.alloc(5)]] }, 7, 1],
      [{ type: 'zset', members: [[Buffer.alloc(2), 1.5]] }, 10, 1],
    ];
    for (const [value, bytes, elements] of cases) {
      expect(chargeOf('key', value)).toBe(
        ENTRY_OVERHEAD_BYTES + 3 + bytes + elements * ELEMENT_OVERHEAD_BYTES[value.type],
      );
    }
    // An empty list still costs its entry: elements without payload are not free.
    expect(chargeOf('', { type: 'list', items: [] })).toBe(ENTRY_OVERHEAD_BYTES);
    expect(chargeOf('', str(''))).toBe(MIN_VALUE_CHARGE_BYTES);
  });
});

describe('HeldValues', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reserve grants min(maxBytes, free room), and 0 once less than the smallest value is free', () => {
    const held = store({ budgetBytes: 2000 });
    const a = held.reserve(1200);
    expect(a.bytes).toBe(1200);
    const b = held.reserve(5000);
    expect(b.bytes).toBe(800);
    expect(held.reservedBytes).toBe(2000);
    expect(held.reserve(100).bytes).toBe(0);
    held.cancel(b);
    expect(held.reservedBytes).toBe(1200);
    const c = held.reserve(5000);
    expect(c.bytes).toBe(800);
    held.cancel(c);
    held.cancel(a);
    // Free room below the smallest charge is no room: a read granted it could hold nothing.
    const big = held.reserve(2000 - MIN_VALUE_CHARGE_BYTES + 1);
    expect(held.reserve(5000).bytes).toBe(0);
    held.cancel(big);
    expect(held.reservedBytes).toBe(0);
    expect(() => held.reserve(0)).toThrow(RangeError);
    expect(() => held.reserve(1.5)).toThrow(RangeError);
  });

  it('settle ends the reservation and holds the value; take hands it out once and frees its bytes', () => {
    const held = store();
    const r = held.reserve(3000);
    const value = str('session-token');
    expect(held.settle('k', T0 + 20, r, value)).toBe('value');
    expect(held.reservedBytes).toBe(0);
    expect(held.heldBytes).toBe(chargeOf('k', value));
    expect([held.size, held.valueCount]).toEqual([1, 1]);
    expect(held.take('k', T0 + 20)).toEqual({ value });
    expect(held.take('k', T0 + 20)).toBeUndefined();
    expect([held.heldBytes, held.size, held.valueCount]).toEqual([0, 0, 0]);
  });

  it('a reason is held uncharged, so it is held even with the budget full', () => {
    const held = store({ budgetBytes: 1000 });
    const filler = held.reserve(1000);
    const r = held.reserve(1000);
    expect(r.bytes).toBe(0); // over budget: the caller does not read ...
    expect(held.settle('k', T0 + 20, r, 'over-budget')).toBe('reason'); // ... and holds the reason
    expect(held.settle('t', T0 + 20, held.reserve(500), 'too-large')).toBe('reason');
    expect([held.heldBytes, held.size, held.valueCount]).toEqual([0, 2, 0]);
    expect(held.take('k', T0 + 20)).toEqual({ valueMissing: 'over-budget' });
    expect(held.take('t')).toEqual({ valueMissing: 'too-large' });
    held.cancel(filler);
  });

  it('a value over its reservation is held only if it fits in what is free, else over-budget', () => {
    const held = store({ budgetBytes: 1000 });
    const value = str('x'.repeat(200));
    const charge = ENTRY_OVERHEAD_BYTES + 1 + 200 + ELEMENT_OVERHEAD_BYTES.string;
    expect(chargeOf('a', value)).toBe(charge);
    expect(charge).toBeGreaterThan(400);
    expect(held.settle('a', T0, held.reserve(400), value)).toBe('value');
    expect(held.heldBytes).toBe(charge);
    // 1000 - charge free (< charge), 400 reserved by another read: the same value no longer fits.
    const other = held.reserve(400);
    expect(held.settle('b', T0, held.reserve(MIN_VALUE_CHARGE_BYTES), value)).toBe('over-budget');
    expect(held.take('b')).toEqual({ valueMissing: 'over-budget' });
    expect(held.heldBytes + held.reservedBytes).toBeLessThanOrEqual(1000);
    held.cancel(other);
  });

  it('a new settle for a key replaces its entry and frees its bytes', () => {
    const held = store();
    const first = str('a'.repeat(1000));
    const second = str('b');
    held.settle('k', T0 + 20, held.reserve(3000), first);
    expect(held.heldBytes).toBe(chargeOf('k', first));
    held.settle('k', T0 + 50, held.reserve(3000), second);
    expect(held.heldBytes).toBe(chargeOf('k', second));
    expect([held.size, held.valueCount]).toEqual([1, 1]);
    held.settle('k', T0 + 80, held.reserve(3000), 'read-failed');
    expect([held.heldBytes, held.size, held.valueCount]).toEqual([0, 1, 0]);
    expect(held.take('k', T0 + 80)).toEqual({ valueMissing: 'read-failed' });
  });

  it('the reply of an earlier read that settles after a later one is discarded', () => {
    const held = store();
    const early = held.reserve(3000);
    const late = held.reserve(3000);
    expect(held.settle('k', T0 + 50, late, str('new'))).toBe('value');
    expect(held.settle('k', T0 + 20, early, str('old'))).toBe('discarded');
    expect(held.reservedBytes).toBe(0);
    expect(held.take('k')).toEqual({ value: str('new') });
  });

  it('deadline mismatch: an entry read for an earlier deadline is dropped, one for a later deadline kept', () => {
    const held = store();
    held.settle('moved', T0 + 20, held.reserve(3000), str('v'));
    // The TTL moved after the read: the event names the new deadline.
    expect(held.take('moved', T0 + 900)).toEqual({ valueMissing: 'ttl-changed' });
    expect(held.size).toBe(0);
    expect(held.heldBytes).toBe(0);

    // The key's next life was read before the previous expiry's event was taken.
    held.settle('again', T0 + 900, held.reserve(3000), str('next'));
    expect(held.take('again', T0 + 20)).toEqual({ valueMissing: 'ttl-changed' });
    expect(held.take('again', T0 + 900)).toEqual({ value: str('next') });

    // Without a deadline (the event carries none), whatever is held is handed out.
    held.settle('any', T0 + 20, held.reserve(3000), str('v'));
    expect(held.take('any')).toEqual({ value: str('v') });
  });

  it('drop removes the entry (with a deadline: only the one read for it) and frees its bytes', () => {
    const held = store();
    held.settle('k', T0 + 20, held.reserve(3000), str('v'));
    expect(held.drop('k', T0 + 21)).toBe(false);
    expect(held.size).toBe(1);
    expect(held.drop('k', T0 + 20)).toBe(true);
    expect([held.size, held.heldBytes]).toEqual([0, 0]);
    held.settle('k', T0 + 20, held.reserve(3000), 'too-large');
    expect(held.drop('k')).toBe(true);
    expect(held.drop('k')).toBe(false);
    expect(held.take('k')).toBeUndefined();
  });

  it('clear releases every entry; reads in flight keep their room until they settle, and hold nothing', () => {
    const held = store();
    held.settle('a', T0 + 20, held.reserve(3000), str('a'));
    held.settle('b', T0 + 20, held.reserve(3000), 'too-large');
    const inFlight = held.reserve(3000);
    expect(held.clear()).toBe(2);
    expect([held.size, held.heldBytes, held.valueCount]).toEqual([0, 0, 0]);
    expect(held.reservedBytes).toBe(3000);
    expect(held.settle('c', T0 + 20, inFlight, str('c'))).toBe('discarded');
    expect([held.size, held.reservedBytes]).toEqual([0, 0]);
    // A read reserved after the clear is held as usual.
    expect(held.settle('d', T0 + 20, held.reserve(3000), str('d'))).toBe('value');
    expect(held.take('a')).toBeUndefined();
    expect(held.take('d')).toEqual({ value: str('d') });
  });

  it('a reservation ends exactly once, and only in its own store', () => {
    const held = store();
    const r = held.reserve(3000);
    held.settle('k', T0, r, str('v'));
    expect(() => held.settle('k', T0, r, str('v'))).toThrow('reservation already ended');
    expect(() => held.cancel(r)).toThrow('reservation already ended');
    expect(held.reservedBytes).toBe(0);
    const foreign = store().reserve(3000);
    expect(() => held.cancel(foreign)).toThrow(TypeError);
    expect(() => held.cancel({ bytes: 10 })).toThrow(TypeError);
  });

  it('close: no room for new reads, later settles hold nothing, the timer is gone', () => {
    const held = store();
    held.settle('k', T0 + 20, held.reserve(3000), str('v'));
    const inFlight = held.reserve(3000);
    expect(vi.getTimerCount()).toBe(1);
    held.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(held.reserve(3000).bytes).toBe(0);
    expect(held.settle('k', T0 + 20, inFlight, str('v'))).toBe('discarded');
    expect([held.size, held.heldBytes, held.reservedBytes]).toEqual([0, 0, 0]);
  });

  describe('release bound', () => {
    it('an entry whose event has not come holdTimeoutMs after its local deadline is released and counted', () => {
      const released: [number, number][] = [];
      // The primary's clock runs 300 ms ahead of the local one: its deadline T0 + 1300 is local T0 + 1000.
      const held = store({ offsetForKey: () => 300, onReleased: (n, bytes) => released.push([n, bytes]) });
      const a = str('a'.repeat(10));
      const b = str('b'.repeat(20));
      held.settle('a', T0 + 1300, held.reserve(3000), a);
      held.settle('b', T0 + 1300, held.reserve(3000), b);
      held.settle('r', T0 + 1300, held.reserve(3000), 'unsupported-type');
      held.settle('later', T0 + 9300, held.reserve(3000), str('later'));
      expect(vi.getTimerCount()).toBe(1); // one timer for every entry

      vi.advanceTimersByTime(1000 + HOLD_MS - 1);
      expect(released).toEqual([]);
      expect(held.size).toBe(4);
      vi.advanceTimersByTime(1);
      // Values are counted with their bytes; the reason entry goes too, uncounted.
      expect(released).toEqual([[2, chargeOf('a', a) + chargeOf('b', b)]]);
      expect(held.size).toBe(1);
      expect(held.heldBytes).toBe(chargeOf('later', str('later')));
      expect(held.take('a', T0 + 1300)).toBeUndefined();

      vi.advanceTimersByTime(8000);
      expect(released).toEqual([
        [2, chargeOf('a', a) + chargeOf('b', b)],
        [1, chargeOf('later', str('later'))],
      ]);
      expect([held.size, held.heldBytes]).toEqual([0, 0]);
      expect(vi.getTimerCount()).toBe(0); // nothing held: no timer
    });

    it('an entry settled after its deadline (a late read) still waits holdTimeoutMs from the settle', () => {
      const released: number[] = [];
      const held = store({ onReleased: (n) => released.push(n) });
      vi.setSystemTime(T0 + 3000);
      held.settle('k', T0, held.reserve(3000), 'read-late');
      held.settle('v', T0, held.reserve(3000), str('v'));
      vi.advanceTimersByTime(HOLD_MS - 1);
      expect(held.size).toBe(2);
      vi.advanceTimersByTime(1);
      expect(held.size).toBe(0);
      expect(released).toEqual([1]);
    });

    it('a take before the sweep still gets its value, and taking the last entry stops the timer', () => {
      const held = store({ sweepIntervalMs: 10_000 });
      held.settle('first', T0, held.reserve(3000), str('1'));
      vi.advanceTimersByTime(HOLD_MS); // first sweep, releases 'first'
      held.settle('k', T0 + 100, held.reserve(3000), str('v'));
      // k is due at T0 + 5100, but the next sweep comes 10 s after the last one, at T0 + 15000.
      vi.advanceTimersByTime(9000);
      expect(held.take('k', T0 + 100)).toEqual({ value: str('v') });
      expect(vi.getTimerCount()).toBe(0);
    });

    it('sweeps at most once per sweepIntervalMs, however the release times are spread', () => {
      let sweepsThatReleased = 0;
      const held = store({ budgetBytes: 10_000_000, onReleased: () => sweepsThatReleased++ });
      for (let i = 0; i < 2000; i++) held.settle(`k${i}`, T0 + i, held.reserve(3000), str('v'));
      vi.advanceTimersByTime(HOLD_MS + 2000);
      expect(held.size).toBe(0);
      // Releases due every 1 ms over 2 s: 3 sweeps (T0 + 5000, + 6000, + 7000), not 2000.
      expect(sweepsThatReleased).toBe(3);
    });

    it('a new entry due before the armed sweep re-arms the timer earlier', () => {
      const held = store();
      held.settle('late', T0 + 60_000, held.reserve(3000), str('v'));
      held.settle('soon', T0 + 10, held.reserve(3000), str('v'));
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(10 + HOLD_MS);
      expect(held.take('soon')).toBeUndefined();
      expect(held.take('late')).toEqual({ value: str('v') });
    });
  });

  it('property: held + reserved never exceeds the budget, and the counts add up', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('reserve' as const), max: fc.integer({ min: 1, max: 4000 }) }),
      fc.record({
        kind: fc.constant('settle' as const),
        pick: fc.nat(),
        key: fc.integer({ min: 0, max: 5 }),
        deadline: fc.integer({ min: 0, max: 3 }),
        payload: fc.integer({ min: 0, max: 3000 }),
        elements: fc.integer({ min: 0, max: 6 }),
        reason: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }),
      fc.record({
        kind: fc.constant('take' as const),
        key: fc.integer({ min: 0, max: 5 }),
        deadline: fc.option(fc.integer({ min: 0, max: 3 })),
      }),
      fc.record({ kind: fc.constant('drop' as const), key: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ kind: fc.constant('clear' as const) }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 3000 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 500, max: 20_000 }), fc.array(op, { maxLength: 60 }), (budget, ops) => {
        vi.setSystemTime(T0);
        const held = store({ budgetBytes: budget });
        const open: ValueReservation[] = [];
        for (const o of ops) {
          switch (o.kind) {
            case 'reserve':
              open.push(held.reserve(o.max));
              break;
            case 'settle': {
              const r = open.splice(o.pick % Math.max(1, open.length), 1)[0];
              if (r === undefined) break;
              const value: ExpiredValue = {
                type: 'list',
                items: Array.from({ length: o.elements }, (_, i) => Buffer.alloc(i === 0 ? o.payload : 1)),
              };
              held.settle(`k${o.key}`, T0 + o.deadline * 1000, r, o.reason ? 'too-large' : value);
              break;
            }
            case 'cancel': {
              const r = open.splice(o.pick % Math.max(1, open.length), 1)[0];
              if (r !== undefined) held.cancel(r);
              break;
            }
            case 'take':
              held.take(`k${o.key}`, o.deadline === null ? undefined : T0 + o.deadline * 1000);
              break;
            case 'drop':
              held.drop(`k${o.key}`);
              break;
            case 'clear':
              held.clear();
              break;
            case 'wait':
              vi.advanceTimersByTime(o.ms);
              break;
          }
          expect(held.heldBytes + held.reservedBytes).toBeLessThanOrEqual(budget);
          expect(held.reservedBytes).toBe(open.reduce((sum, r) => sum + r.bytes, 0));
          expect(held.heldBytes).toBeGreaterThanOrEqual(0);
          expect(held.valueCount).toBeLessThanOrEqual(held.size);
        }
        for (const r of open) held.cancel(r);
        // Every value still held is handed out, and frees exactly its charge.
        let taken = 0;
        for (let key = 0; key <= 5; key++) {
          const outcome = held.take(`k${key}`);
          if (outcome !== undefined && 'value' in outcome) taken += chargeOf(`k${key}`, outcome.value);
        }
        expect(taken).toBeLessThanOrEqual(budget);
        expect([held.heldBytes, held.reservedBytes, held.size, held.valueCount]).toEqual([0, 0, 0, 0]);
        held.close();
      }),
      { numRuns: 300 },
    );
  });
});

describe('HeldValues timer', () => {
  it('is unref: a held value does not keep the process alive', () => {
    const held = store();
    held.settle('k', Date.now(), held.reserve(3000), str('v'));
    // Ref'd timers are listed as active resources (the ones that keep the event loop alive); unref'd are not.
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    held.close();
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(before).toBe(after);
  });
});

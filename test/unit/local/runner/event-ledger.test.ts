import { describe, expect, it } from 'vitest';
import { EventLedger } from '../../../../local/runner/event-ledger.ts';

const tracked = (key: string) => key.startsWith('demo:');

describe('EventLedger', () => {
  it('matches keys processed after the reference saw them, and before', () => {
    const ledger = new EventLedger({ isTracked: tracked });
    ledger.expected('demo:1', 1000);
    ledger.processed('demo:1', 1003);
    ledger.processed('demo:2', 2000);
    ledger.expected('demo:2', 2001);
    expect(ledger.totals()).toEqual({
      expected: 2,
      processed: 2,
      matched: 2,
      missing: 0,
      unexpected: 0,
      duplicates: 0,
      pending: 0,
    });
    expect([...ledger.recentLatencies()].sort()).toEqual([-1, 3]);
  });

  it('ignores keys that are not tracked (canaries, the lease family)', () => {
    const ledger = new EventLedger({ isTracked: tracked });
    expect(ledger.expected('{kl:local:c0}:canary:x', 1)).toBe(false);
    expect(ledger.processed('other', 1)).toBe(false);
    expect(ledger.totals().expected).toBe(0);
  });

  it('counts a second handler call for a key as a duplicate, not as another processed key', () => {
    const ledger = new EventLedger({ isTracked: tracked });
    ledger.expected('demo:1', 0);
    ledger.processed('demo:1', 1);
    ledger.processed('demo:1', 2);
    expect(ledger.totals()).toMatchObject({ processed: 1, matched: 1, duplicates: 1 });
  });

  it('settles a key after settleMs: expected-only becomes missing, processed-only unexpected', () => {
    const ledger = new EventLedger({ isTracked: tracked, settleMs: 100 });
    ledger.expected('demo:lost', 0);
    ledger.processed('demo:ghost', 10);
    ledger.expected('demo:late', 150);
    expect(ledger.totals()).toMatchObject({ pending: 3, missing: 0, unexpected: 0 });
    ledger.settle(120);
    expect(ledger.totals()).toMatchObject({ pending: 1, missing: 1, unexpected: 1, expected: 2 });
    ledger.processed('demo:late', 160);
    ledger.settle(10_000);
    expect(ledger.totals()).toMatchObject({ pending: 0, missing: 1, unexpected: 1, matched: 1 });
  });

  it('keeps a bounded number of latency samples (the most recent)', () => {
    const ledger = new EventLedger({ isTracked: tracked, latencySamples: 3 });
    for (let i = 1; i <= 5; i++) {
      ledger.expected(`demo:${i}`, 0);
      ledger.processed(`demo:${i}`, i);
    }
    expect([...ledger.recentLatencies()].sort()).toEqual([3, 4, 5]);
  });
});

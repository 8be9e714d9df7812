import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExpiryEvent } from '../../../../worker/expiry/expiry-event.ts';
import { FanIn } from '../../../../worker/expiry/fan-in.ts';
import { compileKeyFilter } from '../../../../worker/expiry/key-pattern.ts';
import { captureMetrics, fakeClock } from '../support/fakes.ts';

describe('FanIn', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('stamps, numbers per node and counts every event, in arrival order', () => {
    const { metrics, totals } = captureMetrics();
    const out: ExpiryEvent[] = [];
    const fanIn = new FanIn({ clock: fakeClock, metrics, accepts: () => true, sink: (e) => out.push(e) });
    const a = { id: 'id-a', address: '10.0.0.1:6379' };
    const b = { id: 'id-b', address: '10.0.0.2:6379' };
    fanIn.push(a, Buffer.from('k1'));
    vi.advanceTimersByTime(5);
    fanIn.push(b, Buffer.from('k2'));
    fanIn.push(a, Buffer.from([0xff]));
    expect(out.map((e) => [e.node, e.nodeId, e.seq, e.key.toString('hex')])).toEqual([
      ['10.0.0.1:6379', 'id-a', 1, '6b31'],
      ['10.0.0.2:6379', 'id-b', 1, '6b32'],
      ['10.0.0.1:6379', 'id-a', 2, 'ff'],
    ]);
    expect(out[0]?.receivedAt).toBe(1_700_000_000_000);
    expect(out[1]?.receivedAt).toBe(1_700_000_000_005);
    expect(out[1]?.receivedAtMono).toBe(1_700_000_000_005);
    expect(totals().EventsReceived).toBe(3);
  });

  it('is the one filter: own keys and keys outside KEY_PATTERN go nowhere, but count as received', () => {
    const { metrics, totals } = captureMetrics();
    const out: string[] = [];
    const fanIn = new FanIn({
      clock: fakeClock,
      metrics,
      accepts: compileKeyFilter('job:*'),
      sink: (e) => out.push(e.key.toString()),
    });
    const node = { id: 'id-a', address: '10.0.0.1:6379' };
    for (const key of ['job:1', 'other:1', '{kl:default}:lease', '{kl:x:c0}:canary:abc', 'job:2'])
      fanIn.push(node, Buffer.from(key));
    expect(out).toEqual(['job:1', 'job:2']);
    expect(totals().EventsReceived).toBe(5);
  });

  it('keeps own keys out even with KEY_PATTERN=*', () => {
    const accepts = compileKeyFilter('*');
    expect(accepts(Buffer.from('{kl:orders}:lease'))).toBe(false);
    expect(accepts(Buffer.from('{kl'))).toBe(true);
    expect(accepts(Buffer.from('session:1'))).toBe(true);
  });
});

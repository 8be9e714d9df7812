import { describe, expect, it } from 'vitest';
import type { ExpiryEvent } from '../../../../worker/expiry/expiry-event.ts';
import { keyFingerprint } from '../../../../worker/replay/key-fingerprint.ts';
import type { ProcessedMark } from '../../../../worker/replay/processed-mark.ts';
import { ProgressTracker } from '../../../../worker/replay/progress-tracker.ts';
import { findTailMatches, ReplayWindow } from '../../../../worker/replay/replay-window.ts';

function event(key: string, t: number, nodeId = 'n1', receivedIndex = t): ExpiryEvent {
  return {
    key: Buffer.from(key),
    node: '127.0.0.1:7000',
    nodeId,
    receivedAt: 1_000_000 + t,
    receivedAtMono: t,
    receivedIndex,
  };
}

function windowOf(options: Partial<ConstructorParameters<typeof ReplayWindow>[0]> = {}) {
  const shed: number[] = [];
  const window = new ReplayWindow({
    windowMs: 10_000,
    maxEventsPerPrimary: 1000,
    timeToleranceMs: 20,
    onShed: (count) => shed.push(count),
    ...options,
  });
  return { window, shed };
}

function markAfter(keys: string[], seq: number, receivedAt: number): ProcessedMark {
  return {
    nodeId: 'n1',
    seq,
    tail: keys.map((k) => keyFingerprint(Buffer.from(k))),
    receivedAt,
    fencingToken: 1,
    lineEnd: seq + 100,
    reservedThrough: seq + 100,
  };
}

describe('ReplayWindow', () => {
  it('plans exactly the events after the previous leader tail', () => {
    const { window } = windowOf();
    for (let i = 1; i <= 10; i++) window.append(event(`k${i}`, i));
    const plan = window.plan('n1', markAfter(['k4', 'k5', 'k6'], 60, 1_000_006));
    expect(plan).toMatchObject({ alignment: 'tail', continues: true, tailMatches: 1 });
    expect(plan.entries.map((e) => e.event.key.toString())).toEqual(['k7', 'k8', 'k9', 'k10']);
  });

  it('sequence 8: a tail found at several positions replays from the oldest, never skipping', () => {
    const { window } = windowOf();
    for (const [i, k] of ['a', 'b', 'x', 'a', 'b', 'c'].entries()) window.append(event(k, i + 1));
    const plan = window.plan('n1', markAfter(['a', 'b'], 9, 0));
    expect(plan).toMatchObject({ alignment: 'ambiguous', continues: false, tailMatches: 2 });
    expect(plan.entries.map((e) => e.event.key.toString())).toEqual(['x', 'a', 'b', 'c']);
    expect(plan.previous?.event.key.toString()).toBe('b');
  });

  it('sequence 2: a discontinuity of the window after the tail forbids continuing the numbering', () => {
    const { window } = windowOf();
    for (const [i, k] of ['a', 'b', 'c'].entries()) window.append(event(k, i + 1));
    window.noteGap('n1');
    window.append(event('d', 4));
    // The previous leader saw c then d: nothing was missed between them.
    const after = window.plan('n1', markAfter(['c', 'd'], 9, 0));
    expect(after).toMatchObject({ alignment: 'tail', continues: true, discontinuity: false });
    // After b, this worker may have missed events between c and d: c and d get fresh ids.
    const before = window.plan('n1', markAfter(['a', 'b'], 9, 0));
    expect(before).toMatchObject({ alignment: 'tail', continues: false, discontinuity: true });
    expect(before.entries.map((e) => e.event.key.toString())).toEqual(['c', 'd']);
  });

  it('falls back to receipt time (with tolerance) when the tail is not in the window', () => {
    const { window } = windowOf();
    for (let i = 1; i <= 5; i++) window.append(event(`k${i}`, i * 100));
    const plan = window.plan('n1', markAfter(['x', 'y'], 3, 1_000_000 + 290));
    expect(plan).toMatchObject({ alignment: 'time', continues: false });
    expect(plan.entries.map((e) => e.event.key.toString())).toEqual(['k3', 'k4', 'k5']);
  });

  it('replays the whole window when no mark exists', () => {
    const { window } = windowOf();
    window.append(event('k1', 1));
    expect(window.plan('n1', undefined)).toMatchObject({ alignment: 'no-mark', continues: false });
    expect(window.plan('other', undefined).entries).toEqual([]);
  });

  it('ages events out by time without counting them as shed', () => {
    const { window, shed } = windowOf({ windowMs: 100 });
    window.append(event('old', 0));
    window.append(event('new', 150));
    expect(window.size('n1')).toBe(1);
    window.expire(300);
    expect(window.size()).toBe(0);
    expect(shed).toEqual([]);
  });

  it('counts events pushed out by the memory bound as shed', () => {
    const { window, shed } = windowOf({ maxEventsPerPrimary: 3 });
    for (let i = 1; i <= 5; i++) window.append(event(`k${i}`, i));
    expect(window.size('n1')).toBe(3);
    expect(shed.reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('findTailMatches needs at least two matching fingerprints when the window is shorter than the tail', () => {
    const fp = (k: string) => ({
      event: event(k, 0),
      fingerprint: keyFingerprint(Buffer.from(k)),
      epoch: 0,
      position: 0,
    });
    const tail = ['a', 'b', 'c'].map((k) => keyFingerprint(Buffer.from(k)));
    expect(findTailMatches([fp('c')], tail)).toEqual([]);
    expect(findTailMatches([fp('b'), fp('c'), fp('d')], tail)).toEqual([1]);
    expect(findTailMatches([fp('a'), fp('b'), fp('c'), fp('a'), fp('b'), fp('c')], tail)).toEqual([2, 5]);
  });

  it('sequence 3: a hold keeps entries past the time bound, and the count bound hands held ones to the holder', () => {
    const { window, shed } = windowOf({ windowMs: 100, maxEventsPerPrimary: 5 });
    const first = window.append(event('k0', 0));
    window.hold('n1', first.position);
    for (let i = 1; i <= 4; i++) window.append(event(`k${i}`, i * 100));
    window.expire(1000);
    expect(window.size('n1')).toBe(5); // all older than 100 ms, all held
    window.append(event('k5', 1001)); // six entries: the count bound pushes out the oldest, held
    expect(shed).toEqual([]);
    expect(window.takeDroppedHeld('n1').map((e) => e.event.key.toString())).toEqual(['k0']);
    expect(window.takeDroppedHeld('n1')).toEqual([]);
    expect(window.entryAt('n1', first.position + 1)?.event.key.toString()).toBe('k1');
    window.hold('n1', undefined);
    window.expire(2000);
    expect(window.size('n1')).toBe(0);
    expect(window.endPosition('n1')).toBe(0); // the empty, unheld buffer is gone
  });
});

const fresh = (reservedThrough: number) => ({ kind: 'fresh' as const, reservedThrough });

describe('ProgressTracker', () => {
  it('advances the contiguous settled prefix and exposes it as a mark', () => {
    const tracker = new ProgressTracker(3, 9, 100);
    tracker.begin('n1', {
      kind: 'continue',
      mark: {
        nodeId: 'n1',
        seq: 10,
        tail: ['f8', 'f9', 'f10'],
        receivedAt: 99,
        fencingToken: 8,
        lineEnd: 200,
        reservedThrough: 200,
      },
    });
    expect(tracker.assign('n1', 'f11', 100)).toBeUndefined(); // nothing before a confirmed write
    tracker.confirm(tracker.takeDirtyMarks().map((m) => m.nodeId));
    const seqs = ['f11', 'f12', 'f13'].map((f, i) => tracker.assign('n1', f, 100 + i));
    expect(seqs).toEqual([11, 12, 13]);
    tracker.settle('n1', 12);
    expect(tracker.takeDirtyMarks()).toEqual([]);
    tracker.settle('n1', 11);
    expect(tracker.takeDirtyMarks()).toEqual([
      {
        nodeId: 'n1',
        seq: 12,
        tail: ['f10', 'f11', 'f12'],
        receivedAt: 101,
        fencingToken: 9,
        lineEnd: 200,
        reservedThrough: 200,
      },
    ]);
    expect(tracker.inFlight).toBe(1);
    tracker.abandon('n1', 13);
    expect(tracker.takeDirtyMarks()[0]).toMatchObject({ seq: 13, tail: ['f11', 'f12', 'f13'] });
    expect(tracker.takeDirtyMarks()).toEqual([]);
  });

  it('sequence 2: never assigns beyond a confirmed reservation; extends it ahead of use', () => {
    const tracker = new ProgressTracker(2, 1, 10);
    tracker.begin('n1', fresh(0));
    const [first] = tracker.takeDirtyMarks();
    expect(first).toMatchObject({ seq: 0, lineEnd: 10, reservedThrough: 10 });
    tracker.confirm(['n1']);
    const seqs: (number | undefined)[] = [];
    for (let i = 0; i < 12; i++) seqs.push(tracker.assign('n1', `f${i}`, i));
    // Once less than half a block is left the line is extended (to 15, then 20), but only up to 10
    // may be used until an extension is confirmed.
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, undefined, undefined]);
    expect(tracker.takeDirtyMarks()[0]).toMatchObject({ reservedThrough: 20, lineEnd: 20 });
    tracker.confirm(['n1']);
    expect(tracker.assign('n1', 'f', 0)).toBe(11);
  });

  it('sequence 2: a line closed by a later line is left at its end for a fresh one', () => {
    const tracker = new ProgressTracker(2, 2, 10);
    // The previous leader jumped to a line above 20 after a gap; its mark is still in the line to 10.
    tracker.begin('n1', {
      kind: 'continue',
      mark: {
        nodeId: 'n1',
        seq: 9,
        tail: ['a', 'b'],
        receivedAt: 0,
        fencingToken: 1,
        lineEnd: 10,
        reservedThrough: 30,
      },
    });
    tracker.confirm(tracker.takeDirtyMarks().map((m) => m.nodeId));
    expect(tracker.assign('n1', 'c', 0)).toBe(10);
    expect(tracker.assign('n1', 'd', 0)).toBeUndefined(); // the new line [31, 40] is not confirmed yet
    expect(tracker.takeDirtyMarks()[0]).toMatchObject({ reservedThrough: 40 });
    tracker.confirm(['n1']);
    expect(tracker.assign('n1', 'd', 0)).toBe(31);
    tracker.settle('n1', 10);
    tracker.settle('n1', 31); // the settled prefix follows the jump
    expect(tracker.takeDirtyMarks()[0]).toMatchObject({ seq: 31, lineEnd: 40, tail: ['c', 'd'] });
  });

  it('sequence 2: a second line break before anything was numbered in the new line changes nothing', () => {
    const tracker = new ProgressTracker(2, 1, 10);
    tracker.begin('n1', fresh(0));
    tracker.confirm(tracker.takeDirtyMarks().map((m) => m.nodeId));
    expect(tracker.assign('n1', 'a', 0)).toBe(1);
    tracker.breakLine('n1'); // a gap: the next event opens [11, 20]
    tracker.breakLine('n1'); // another, before the new line numbered anything
    expect(tracker.takeDirtyMarks()[0]).toMatchObject({ reservedThrough: 20 });
    tracker.confirm(['n1']);
    expect(tracker.assign('n1', 'b', 0)).toBe(11);
    tracker.settle('n1', 1);
    tracker.settle('n1', 11); // the settled prefix follows the one jump
    expect(tracker.takeDirtyMarks()[0]).toMatchObject({ seq: 11, tail: ['a', 'b'] });
  });

  it('a new leader aligned by the mark continues the same numbering (same identity everywhere)', () => {
    const old = new ProgressTracker(4, 1);
    old.begin('n1', fresh(0));
    old.confirm(old.takeDirtyMarks().map((m) => m.nodeId));
    const { window } = windowOf();
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    keys.forEach((k, i) => {
      const entry = window.append(event(k, i + 1));
      if (i < 4) old.settle('n1', old.assign('n1', entry.fingerprint, entry.event.receivedAt) as number);
    });
    const mark = old.takeDirtyMarks()[0] as ProcessedMark;
    const plan = window.plan('n1', mark);
    expect(plan.continues).toBe(true);
    expect(plan.entries.map((e) => e.event.key.toString())).toEqual(['e', 'f']);
    const next = new ProgressTracker(4, 2);
    next.begin('n1', { kind: 'continue', mark });
    next.confirm(next.takeDirtyMarks().map((m) => m.nodeId));
    expect(plan.entries.map((e) => next.assign('n1', e.fingerprint, e.event.receivedAt))).toEqual([5, 6]);
  });
});

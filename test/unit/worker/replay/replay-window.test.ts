import { describe, expect, it } from 'vitest';
import type { ExpiryEvent } from '../../../../worker/expiry/expiry-event.ts';
import { keyFingerprint } from '../../../../worker/replay/key-fingerprint.ts';
import type { ProcessedMark } from '../../../../worker/replay/processed-mark.ts';
import { ProgressTracker } from '../../../../worker/replay/progress-tracker.ts';
import { findTail, ReplayWindow } from '../../../../worker/replay/replay-window.ts';

function event(key: string, t: number, nodeId = 'n1', seq = t): ExpiryEvent {
  return {
    key: Buffer.from(key),
    node: '127.0.0.1:7000',
    nodeId,
    receivedAt: 1_000_000 + t,
    receivedAtMono: t,
    seq,
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
  };
}

describe('ReplayWindow', () => {
  it('plans exactly the events after the previous leader tail', () => {
    const { window } = windowOf();
    for (let i = 1; i <= 10; i++) window.append(event(`k${i}`, i));
    const plan = window.plan('n1', markAfter(['k4', 'k5', 'k6'], 60, 1_000_006));
    expect(plan.alignment).toBe('tail');
    expect(plan.firstSeq).toBe(61);
    expect(plan.entries.map((e) => e.event.key.toString())).toEqual(['k7', 'k8', 'k9', 'k10']);
  });

  it('aligns on the newest occurrence of a tail even when keys repeat', () => {
    const { window } = windowOf();
    for (const [i, k] of ['a', 'b', 'a', 'b', 'c'].entries()) window.append(event(k, i + 1));
    const plan = window.plan('n1', markAfter(['a', 'b'], 9, 0));
    expect(plan.entries.map((e) => e.event.key.toString())).toEqual(['c']);
  });

  it('falls back to receipt time (with tolerance) when the tail is not in the window', () => {
    const { window } = windowOf();
    for (let i = 1; i <= 5; i++) window.append(event(`k${i}`, i * 100));
    const plan = window.plan('n1', markAfter(['x', 'y'], 3, 1_000_000 + 290));
    expect(plan.alignment).toBe('time');
    expect(plan.entries.map((e) => e.event.key.toString())).toEqual(['k3', 'k4', 'k5']);
  });

  it('replays the whole window when no mark exists', () => {
    const { window } = windowOf();
    window.append(event('k1', 1));
    expect(window.plan('n1', undefined)).toMatchObject({ alignment: 'no-mark', firstSeq: 1 });
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

  it('findTail needs at least two matching fingerprints when the window is shorter than the tail', () => {
    const fp = (k: string) => ({
      event: event(k, 0),
      fingerprint: keyFingerprint(Buffer.from(k)),
      position: 0,
    });
    const tail = ['a', 'b', 'c'].map((k) => keyFingerprint(Buffer.from(k)));
    expect(findTail([fp('c')], tail)).toBeUndefined();
    expect(findTail([fp('b'), fp('c'), fp('d')], tail)).toBe(1);
  });
});

describe('ProgressTracker', () => {
  it('advances the contiguous settled prefix and exposes it as a mark', () => {
    const tracker = new ProgressTracker(3, 9);
    tracker.begin('n1', 11, ['f8', 'f9', 'f10']);
    const seqs = ['f11', 'f12', 'f13'].map((f, i) => tracker.assign('n1', f, 100 + i));
    expect(seqs).toEqual([11, 12, 13]);
    tracker.settle('n1', 12);
    expect(tracker.takeDirtyMarks()).toEqual([]);
    tracker.settle('n1', 11);
    expect(tracker.takeDirtyMarks()).toEqual([
      { nodeId: 'n1', seq: 12, tail: ['f10', 'f11', 'f12'], receivedAt: 101, fencingToken: 9 },
    ]);
    expect(tracker.inFlight).toBe(1);
    tracker.abandon('n1', 13);
    expect(tracker.takeDirtyMarks()[0]).toMatchObject({ seq: 13, tail: ['f11', 'f12', 'f13'] });
    expect(tracker.takeDirtyMarks()).toEqual([]);
  });

  it('a new leader aligned by the mark continues the same numbering (same identity everywhere)', () => {
    const old = new ProgressTracker(4, 1);
    const { window } = windowOf();
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    keys.forEach((k, i) => {
      const entry = window.append(event(k, i + 1));
      if (i < 4) old.settle('n1', old.assign('n1', entry.fingerprint, entry.event.receivedAt));
    });
    const mark = old.takeDirtyMarks()[0];
    const plan = window.plan('n1', mark);
    expect(plan.entries.map((e) => e.event.key.toString())).toEqual(['e', 'f']);
    const next = new ProgressTracker(4, 2);
    next.begin('n1', plan.firstSeq, mark?.tail);
    expect(plan.entries.map((e) => next.assign('n1', e.fingerprint, e.event.receivedAt))).toEqual([5, 6]);
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

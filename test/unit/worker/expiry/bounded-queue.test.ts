import { describe, expect, it } from 'vitest';
import { BoundedQueue } from '../../../../worker/expiry/bounded-queue.ts';

describe('BoundedQueue', () => {
  it('is FIFO across the wrap-around and refuses when full', () => {
    const queue = new BoundedQueue<number>(3);
    expect([queue.push(1), queue.push(2), queue.push(3), queue.push(4)]).toEqual([true, true, true, false]);
    expect(queue.isFull).toBe(true);
    expect(queue.shift()).toBe(1);
    expect(queue.push(5)).toBe(true);
    expect([queue.shift(), queue.shift(), queue.shift(), queue.shift()]).toEqual([2, 3, 5, undefined]);
    expect(queue.length).toBe(0);
  });

  it('peek gives the item shift would, and leaves it', () => {
    const q = new BoundedQueue<number>(2);
    expect(q.peek()).toBeUndefined();
    q.push(1);
    q.push(2);
    expect(q.peek()).toBe(1);
    expect(q.length).toBe(2);
    q.shift();
    q.push(3); // wraps around
    expect(q.peek()).toBe(2);
  });

  it('clear reports how many items it dropped', () => {
    const queue = new BoundedQueue<string>(4);
    queue.push('a');
    queue.push('b');
    expect(queue.clear()).toBe(2);
    expect(queue.length).toBe(0);
    expect(queue.push('c')).toBe(true);
    expect(queue.shift()).toBe('c');
  });

  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new BoundedQueue(0)).toThrow(RangeError);
    expect(() => new BoundedQueue(1.5)).toThrow(RangeError);
  });
});

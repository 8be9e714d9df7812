/**
 * A FIFO ring buffer with a fixed capacity: memory is bounded by construction, and push/shift are
 * O(1) (an array's `shift` is O(n), which matters at 10,000 queued events). `push` refuses (returns
 * false) when full; what to do with the refused item is the caller's policy.
 */
export class BoundedQueue<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.items = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.size;
  }

  get isFull(): boolean {
    return this.size === this.capacity;
  }

  push(item: T): boolean {
    if (this.size === this.capacity) return false;
    this.items[(this.head + this.size) % this.capacity] = item;
    this.size++;
    return true;
  }

  /** The item `shift` would return, left in place. */
  peek(): T | undefined {
    return this.size === 0 ? undefined : this.items[this.head];
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return item;
  }

  /** Empties the queue and returns how many items it held. */
  clear(): number {
    const dropped = this.size;
    while (this.size > 0) this.shift();
    return dropped;
  }
}

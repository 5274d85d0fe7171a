// An unbounded single-consumer queue that is also an async iterable: the producer pushes items
// and then either ends or fails it; the consumer receives every pushed item before the end or
// the failure.

export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (err: unknown) => void } | undefined;
  private finished = false;
  private failure: { error: unknown } | undefined;

  /**
   * `onReturn` runs when the consumer stops iterating early (break, return, throw); `onTake`
   * after the consumer took a buffered item, with how many remain (for producer backpressure).
   */
  constructor(
    private readonly onReturn?: () => void,
    private readonly onTake?: (remaining: number) => void,
  ) {}

  /** Items pushed and not yet taken. */
  get length(): number {
    return this.items.length;
  }

  /** True once end() or fail() was called. */
  get closed(): boolean {
    return this.finished;
  }

  push(item: T): void {
    if (this.finished) return;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.wake();
  }

  fail(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = { error };
    this.wake();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      const value = this.items.shift()!;
      this.onTake?.(this.items.length);
      return Promise.resolve({ value, done: false });
    }
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter) return Promise.reject(new Error("AsyncQueue: concurrent next() calls"));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /**
   * The queue as a full async generator (with throw()), as connect-node's clients require of a
   * request stream.
   */
  async *generate(): AsyncGenerator<T> {
    yield* this;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: async () => {
        this.onReturn?.();
        return { value: undefined, done: true };
      },
    };
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    if (this.failure) w.reject(this.failure.error);
    else w.resolve({ value: undefined, done: true });
  }
}

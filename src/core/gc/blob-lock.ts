// The lock that keeps garbage collection from removing a local blob that a writer is about to
// record. GC removes a blob file only while holding withBlobLock(digest), after checking that
// no namespace has a BlobRecord for it and no IngestRecord expects it. Writers keep the other
// half of the contract:
//   - committing new data: hold withBlobLock(digest) from the local commit (the blob file
//     appearing) until the transaction that adds the BlobRecord has committed;
//   - relying on a blob the local store already holds (a shared write without data): hold it
//     from the existence check until the transaction recording the IngestRecord with
//     `expected` (or the BlobRecord) has committed.
// Records are only ever added in synchronous transactions, so a check made under the lock and
// the removal that follows it cannot miss a record added by a writer that keeps the contract.

const tails = new Map<string, Promise<void>>();

/** Runs fn while holding the lock on digest; callers queue in order (FIFO). */
export function withBlobLock<T>(digest: string, fn: () => Promise<T> | T): Promise<T> {
  const previous = tails.get(digest) ?? Promise.resolve();
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => held);
  tails.set(digest, tail);
  return previous.then(fn).finally(() => {
    release();
    if (tails.get(digest) === tail) tails.delete(digest);
  });
}

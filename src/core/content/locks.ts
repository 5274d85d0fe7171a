// One writer per ingest ref: an in-memory lock taken when a writer opens and released when it
// commits or closes. A second writer on a locked ref fails with Unavailable, as containerd's.
import { unavailable } from "../../pkg/errdefs/errdefs.js";

export interface IngestLock {
  readonly ref: string;
  /** Idempotent. */
  release(): void;
}

export class RefLocks {
  private readonly held = new Map<string, Date>();

  /** Takes the lock on ref or throws Unavailable naming how long it has been held. */
  lock(ref: string): IngestLock {
    const since = this.held.get(ref);
    if (since !== undefined) {
      const ms = Date.now() - since.getTime();
      throw unavailable(`ref ${ref} locked for ${ms}ms (since ${since.toISOString()}): unavailable`);
    }
    const taken = new Date();
    this.held.set(ref, taken);
    let released = false;
    return {
      ref,
      release: () => {
        if (released) return;
        released = true;
        if (this.held.get(ref) === taken) this.held.delete(ref);
      },
    };
  }
}

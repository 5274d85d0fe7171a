// Moving a stream of small chunks (a socket's reads) to a slow asynchronous sink (file writes)
// without making the reader wait for each write: while one write is in flight the chunks that
// arrive are collected, and the next write takes them all at once (a vectored write, so they
// are not copied together). The source is paused only when maxPending bytes are waiting.

/** The default bytes collected while a write is in flight before the source is paused. */
const DEFAULT_MAX_PENDING = 8 << 20;

/**
 * Reads source to its end, passing its chunks in order to sink with at most one sink call in
 * flight. The first sink failure stops the reading (the source is closed) and is thrown.
 */
export async function pumpBatched(
  source: AsyncIterable<Uint8Array>,
  sink: (chunks: Uint8Array[]) => Promise<void>,
  maxPending = DEFAULT_MAX_PENDING,
): Promise<void> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let inflight: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;

  const start = () => {
    const chunks = pending;
    pending = [];
    pendingBytes = 0;
    inflight = sink(chunks).then(
      () => {
        inflight = undefined;
        if (pendingBytes > 0 && failure === undefined) start();
      },
      (error: unknown) => {
        failure ??= { error };
        inflight = undefined;
      },
    );
  };

  try {
    for await (const chunk of source) {
      if (failure) break;
      if (chunk.length === 0) continue;
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (inflight === undefined) start();
      else if (pendingBytes >= maxPending) await inflight;
    }
  } finally {
    // Nothing is left writing when this returns or throws (inflight never rejects).
    while (inflight !== undefined) await inflight;
  }
  if (failure === undefined && pendingBytes > 0) {
    start();
    while (inflight !== undefined) await inflight;
  }
  if (failure) throw failure.error;
}

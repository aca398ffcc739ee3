// The tear-down every integration file repeats: an after() that stops what
// its before() started (mailgate, mock backends, mock auth, fake DNS), every
// one of them, even when one stop fails or before() failed halfway (an
// unstarted mock is still undefined), so no process or port outlives its
// describe.

interface Stoppable {
  stop(): unknown;
}

/**
 * Stops each of `things` in the order given (mailgate first, then its
 * peers, so it never sees a peer vanish mid-session); skips the ones never
 * started; tries them all, then throws the first failure.
 */
export async function stopAll(...things: (Stoppable | null | undefined)[]): Promise<void> {
  let first: unknown = null;
  for (const t of things) {
    try {
      await t?.stop();
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== null) throw first;
}

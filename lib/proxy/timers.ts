// The timers a session arms (`timeout`, smtp_greeting_delay, Auth-Wait),
// behind a two-call interface so that unit tests can run a session on a
// clock they advance themselves instead of waiting for real time.

export interface Timers {
  /** Calls fn once after ms milliseconds; returns a handle for clear(). */
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** The host's timers (both runtimes implement setTimeout as the web platform does). */
export const REAL_TIMERS: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

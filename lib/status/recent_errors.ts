// The last error-log lines at level "warn" or worse, for the status page.
// Bounded (RECENT_MAX lines, each cut at LINE_MAX characters). Error-log
// lines never hold passwords (lib/log/error_log.ts), so neither does this.

export const RECENT_MAX = 50;
const LINE_MAX = 500;

const ring: string[] = [];

export function recordError(line: string): void {
  if (ring.length >= RECENT_MAX) ring.shift();
  ring.push(line.length > LINE_MAX ? line.slice(0, LINE_MAX) + "..." : line);
}

/** Oldest first. */
export function recentErrors(): string[] {
  return ring.slice();
}

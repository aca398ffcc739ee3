// What a running process holds, read from /proc (Linux): resident memory
// and open file descriptors. The hardening tests compare them before and
// after a group of hostile or faulty sessions to catch leaks.

import { readdirSync, readFileSync } from "node:fs";

/** VmRSS of `pid` in bytes. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Number of open file descriptors of `pid`. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Polls until `pid` has at most `limit` fds (sessions close asynchronously);
 * returns the last count seen. Bounded by `ms`.
 */
export async function settleFds(pid: number, limit: number, ms = 5000): Promise<number> {
  const deadline = Date.now() + ms;
  let n = fdCount(pid);
  while (n > limit && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    n = fdCount(pid);
  }
  return n;
}

export const MiB = 1024 * 1024;

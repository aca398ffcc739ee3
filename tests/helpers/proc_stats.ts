// What a running process holds, read from /proc (Linux): resident memory
// and open file descriptors. The hardening tests compare them before and
// after a group of hostile or faulty sessions to catch leaks.

import { readdirSync, readFileSync, readlinkSync } from "node:fs";

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

/** TCP states of /proc/net/tcp, by their hex code. */
const TCP_STATES: Record<string, string> = {
  "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
  "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
};

/**
 * What each open fd of `pid` is, for a failure message: the link target, and
 * for a TCP socket its local and remote port and state.
 */
export function describeFds(pid: number): string {
  const sockets = new Map<string, string>();
  for (const table of ["tcp", "tcp6"]) {
    let text = "";
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, "latin1");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const port = (a: string) => parseInt(a.slice(a.indexOf(":") + 1), 16);
      sockets.set(f[9], `tcp :${port(f[1])} -> :${port(f[2])} ${TCP_STATES[f[3]] ?? f[3]}`);
    }
  }
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = "?";
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch { /* closed meanwhile */ }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    out.push(`${fd}=${inode && sockets.has(inode) ? sockets.get(inode) : target}`);
  }
  return out.join(", ");
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
